"""The programs the cluster runs and the processes it watches: which are installed, which pid is alive,
polling for a condition, and ending daemons."""

import os
import shutil
import signal
import sys
import time
from pathlib import Path

BINARIES = (
    "munged",
    "munge",
    "unmunge",
    "mariadbd",
    "mariadb-install-db",
    "mariadb",
    "slurmdbd",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "sacct",
    "sacctmgr",
    "scontrol",
    "sinfo",
    "scancel",
)


def path_with_sbin() -> str:
    """PATH plus the sbin folders where Debian puts the daemons (a non-login PATH may lack them)."""
    path = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(path + [d for d in ("/usr/sbin", "/sbin") if d not in path])


def missing_binaries() -> list[str]:
    """Names of the programs the cluster needs that are not installed."""
    return [b for b in BINARIES if shutil.which(b, path=path_with_sbin()) is None]


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log, for an error message."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text[-lines:]) or "(log is empty)"


def pid_alive(pid: int, name: str) -> bool:
    """True if `pid` runs and is the program we expect (guards against recycled pids).

    A zombie counts as dead, and is reaped when it is our child: mariadbd runs in the foreground, so
    when start() and stop() run in one process (the pytest fixture) it would otherwise stay a zombie.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    comm, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return comm == name[:15]


def poll(ready, timeout: float, interval: float = 0.2) -> bool:
    """Call `ready` every `interval` s until it is true (True) or `timeout` s have passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def terminate(pids: dict[tuple[str, str | None], int], grace: float = 20) -> None:
    """SIGTERM every daemon in `pids` ((name, node) -> pid), then SIGKILL what is left after `grace` s."""

    def gone() -> bool:
        return not any(pid_alive(pid, name) for (name, _), pid in pids.items())

    for pid in pids.values():
        os.kill(pid, signal.SIGTERM)
    if not poll(gone, grace, interval=0.1):
        for (name, node), pid in pids.items():
            if pid_alive(pid, name):
                print(
                    f"slurm_cluster: {name} {node or ''} ignored SIGTERM for {grace:.0f} s; killing it",
                    file=sys.stderr,
                )
                os.kill(pid, signal.SIGKILL)
        poll(gone, 5, interval=0.1)
