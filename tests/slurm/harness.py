"""A real single-node SLURM cluster for the test-suite and CI.

Why a real one: the submitit launcher talks to sbatch/squeue/sacct/scancel and reacts to signals and
requeues; only the real daemons show how a sweep behaves when a job is cancelled, preempted or fails.

What runs (in start order): munged, mariadbd, slurmdbd, slurmctld, ``slurmd -N localhost``.
Everything it writes (configs, state, spool, logs, pid files, the database) lives under one folder,
``/tmp/retina-seg-slurm`` unless ``RETINA_SEG_SLURM_DIR`` says otherwise. Tools find the config through
``SLURM_CONF``, which ``start()`` exports into ``os.environ`` (so child processes such as submitit see it).

Usage::

    python -m tests.slurm.harness start|stop|status

Settings learned the hard way (see /work/shared/STACK-FACTS.md):
- munged must listen on its default socket; a custom socket broke sacct/sacctmgr.
- Accounting (slurmdbd) is required: without it sacct fails and submitit waits forever on a
  cancelled job.
- No systemd and no cgroups here: proctrack/linuxproc, task/none, jobacct_gather/none.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DIR = "/tmp/retina-seg-slurm"
CLUSTER = "retina"
PARTITION = "debug"
NODE = "localhost"  # the sandbox host name is not "localhost", hence `slurmd -N localhost`
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
DB_PORT = 3307  # not 3306, so a system MariaDB (if any) does not get in the way
DB_USER, DB_PASS, DB_NAME = "slurm", "slurm", "slurm_acct_db"

# Start order; stop() goes in reverse. Values are the process names (/proc/PID/comm) we expect.
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
# stop() order: groups stopped one after another, the daemons within a group together. slurmctld
# flushes to slurmdbd, slurmdbd to mariadb, and all of them need munged until they are gone.
STOP_GROUPS = (("slurmd", "slurmctld"), ("slurmdbd",), ("mariadbd", "munged"))
BINARIES = ("munged", "munge", "unmunge", "mariadbd", "mariadb-install-db", "mariadb", "slurmdbd",
            "slurmctld", "slurmd", "sbatch", "squeue", "sacct", "sacctmgr", "scontrol", "sinfo", "scancel")

HEALTHY_NODE_STATES = {"idle", "mixed", "allocated", "completing"}


class SlurmError(RuntimeError):
    """The cluster could not be brought up (the message carries the tail of the relevant log)."""


def _path_with_sbin() -> str:
    """PATH plus the sbin folders where Debian puts the daemons (a non-login PATH may lack them)."""
    path = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(path + [d for d in ("/usr/sbin", "/sbin") if d not in path])


def missing_binaries() -> list[str]:
    """Names of the programs the harness needs that are not installed."""
    return [b for b in BINARIES if shutil.which(b, path=_path_with_sbin()) is None]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text[-lines:]) or "(log is empty)"


def _pid_alive(pid: int, name: str) -> bool:
    """True if `pid` runs and is the program we expect (guards against recycled pids).

    A zombie counts as dead, and is reaped when it is our child: mariadbd runs in the foreground, so
    when start() and stop() run in one process (the pytest fixture) it would otherwise stay a zombie.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    comm, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return comm == name[:15]


class SlurmCluster:
    """Bring up, check and tear down the single-node cluster whose files live under ``root``."""

    def __init__(self, root: str | os.PathLike | None = None, timeout: float = 60.0):
        self.root = Path(root or os.environ.get("RETINA_SEG_SLURM_DIR") or DEFAULT_DIR)
        self.timeout = timeout
        self.etc, self.log_dir, self.run_dir = self.root / "etc", self.root / "log", self.root / "run"
        self.conf = self.etc / "slurm.conf"
        self.db_dir = self.root / "mysql"
        self.db_socket = self.run_dir / "mariadb.sock"
        self.actions: list[str] = []  # what the last start() did, for the CLI and for debugging

    # ----------------------------------------------------------------- public API
    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses: the current one plus SLURM_CONF pointing at our config."""
        # A property, so that it follows later changes to os.environ.
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": _path_with_sbin()}

    def is_up(self) -> bool:
        """Controller answers, the node can take jobs, and accounting knows our cluster."""
        if not self.conf.exists():
            return False
        ping = self._run(["scontrol", "ping"])
        if ping.returncode != 0 or "UP" not in ping.stdout:
            return False
        if self._node_state() not in HEALTHY_NODE_STATES:
            return False
        return CLUSTER in self._clusters()

    def start(self) -> bool:
        """Bring the cluster up; return False (and do nothing) when it already is up and healthy.

        Idempotent on purpose: tests, CI and developers may each call it. Daemons that are still
        running from an earlier start are kept; only missing ones are started.
        """
        os.environ["SLURM_CONF"] = str(self.conf)
        self.actions = []
        if self.is_up():
            return False
        for d in (self.etc, self.log_dir, self.run_dir, self.root / "state", self.root / "spool"):
            d.mkdir(parents=True, exist_ok=True)
        self._write_configs()
        self._start_munged()
        self._start_mariadb()
        self._start_slurmdbd()
        self._start_slurmctld()
        self._start_slurmd()
        return True

    def stop(self) -> list[str]:
        """Stop, in reverse order, the daemons this harness started (those with a pid file here).

        Running jobs are cancelled first so no slurmstepd is left behind. A munged that was already
        running before us has no pid file here and is left alone. Returns the names stopped.
        """
        if self._running("slurmctld"):
            self._run(["scancel", f"--partition={PARTITION}"])
            self._poll(lambda: not self._run(["squeue", "-h"]).stdout.strip(), 10)
        stopped = []
        for group in STOP_GROUPS:
            ours = {name: self._pid(name) for name in group if self._running(name)}
            self._terminate(ours)
            stopped += ours
            for name in group:
                self._pid_file(name).unlink(missing_ok=True)
        return stopped

    def status(self) -> str:
        """One line per daemon (pid or 'not running') plus the overall verdict."""
        lines = []
        for name in DAEMONS:
            pid = self._pid(name)
            if pid is not None and _pid_alive(pid, name):
                lines.append(f"{name:10s} pid {pid}")
            elif name == "munged" and self._munge_works():
                lines.append(f"{name:10s} running (not started by this harness)")
            else:
                lines.append(f"{name:10s} not running")
        lines.append(f"cluster    {'UP' if self.is_up() else 'DOWN'} (SLURM_CONF={self.conf})")
        return "\n".join(lines)

    # ----------------------------------------------------------------- configs
    def _write_configs(self) -> None:
        cpus = len(os.sched_getaffinity(0))
        mem_mb = int(_mem_total_mb() * 0.85)
        r = self.root
        slurm_conf = f"""\
# Written by tests/slurm/harness.py; regenerated on every start.
ClusterName={CLUSTER}
SlurmctldHost={NODE}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No systemd/cgroups in the sandbox.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job without --mem would take the whole node and jobs could not run side by side.
DefMemPerCPU={mem_mb // cpus}
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost={NODE}
JobCompType=jobcomp/none
# Tests requeue preempted jobs; batch jobs are requeueable by default.
JobRequeue=1
# Cancelled jobs die fast; ended jobs stay visible to squeue/scontrol for 5 minutes.
KillWait=2
MinJobAge=300
# A node that was DOWN (e.g. left from an earlier run) returns to service when slurmd registers.
ReturnToService=2
InactiveLimit=0
Waittime=0
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={self._pid_file("slurmctld")}
SlurmdPidFile={self._pid_file("slurmd")}
SlurmctldLogFile={self._log("slurmctld")}
SlurmdLogFile={self._log("slurmd")}
SlurmctldDebug=info
SlurmdDebug=info
NodeName={NODE} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""
        dbd_conf = f"""\
# Written by tests/slurm/harness.py; regenerated on every start.
AuthType=auth/munge
DbdHost={NODE}
SlurmUser=root
LogFile={self._log("slurmdbd")}
PidFile={self._pid_file("slurmdbd")}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={DB_PORT}
StorageUser={DB_USER}
StoragePass={DB_PASS}
StorageLoc={DB_NAME}
"""
        self.conf.write_text(slurm_conf)
        dbd = self.etc / "slurmdbd.conf"  # slurmdbd looks next to SLURM_CONF
        dbd.write_text(dbd_conf)
        dbd.chmod(0o600)  # slurmdbd refuses a config others can read (it holds a password)

    # ----------------------------------------------------------------- daemons
    def _start_munged(self) -> None:
        if self._munge_works():
            return  # someone (maybe us, earlier) already serves the default socket: share it
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_SOCKET.parent, "munge", "munge")
        MUNGE_SOCKET.parent.chmod(0o755)
        munge_dir = self.root / "munge"  # munged runs as user munge and wants its own files
        munge_dir.mkdir(exist_ok=True)
        shutil.chown(munge_dir, "munge", "munge")
        munge_dir.chmod(0o700)
        log = munge_dir / "munged.log"  # written by munged itself; its stdout/stderr go to log/
        self._spawn(["munged", f"--log-file={log}", f"--pid-file={munge_dir / 'munged.pid'}",
                     f"--seed-file={munge_dir / 'munged.seed'}"], self._log("munged"), user="munge")
        self._wait(self._munge_works, "munged to answer", log)
        self._pid_file("munged").write_text((munge_dir / "munged.pid").read_text())

    def _start_mariadb(self) -> None:
        log = self._log("mariadb")
        if not self._running("mariadbd"):
            if not (self.db_dir / "mysql").is_dir():
                init = subprocess.run(
                    ["mariadb-install-db", "--no-defaults", f"--datadir={self.db_dir}", "--user=root",
                     "--auth-root-authentication-method=socket", "--skip-test-db"],
                    env=self.env, capture_output=True, text=True)
                if init.returncode != 0:
                    raise SlurmError(f"mariadb-install-db failed:\n{init.stdout}\n{init.stderr}")
            proc = self._spawn(["mariadbd", "--no-defaults", f"--datadir={self.db_dir}", "--user=root",
                                f"--socket={self.db_socket}", f"--pid-file={self._pid_file('mariadbd')}",
                                f"--port={DB_PORT}", "--bind-address=127.0.0.1", "--skip-name-resolve",
                                f"--log-error={log}"], log, forks=False)

            def accepts() -> bool:
                if proc.poll() is not None:
                    raise SlurmError(f"mariadbd exited with {proc.returncode}; tail of {log}:\n{_tail(log)}")
                return self._sql("SELECT 1").returncode == 0

            self._wait(accepts, "mariadb to accept connections", log, daemon="mariadbd")
        grant = self._sql(f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASS}'; "
                          f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';")
        if grant.returncode != 0:
            raise SlurmError(f"could not create the slurm database user: {grant.stderr}")

    def _start_slurmdbd(self) -> None:
        log = self._log("slurmdbd")
        if not self._running("slurmdbd"):
            self._spawn(["slurmdbd"], log)
        self._wait(lambda: self._run(["sacctmgr", "-n", "show", "cluster"]).returncode == 0,
                   "slurmdbd to answer sacctmgr", log, daemon="slurmdbd")
        if CLUSTER not in self._clusters():
            self.actions.append(f"added cluster {CLUSTER} to accounting")
            add = self._run(["sacctmgr", "-i", "add", "cluster", CLUSTER])
            if add.returncode != 0:
                raise SlurmError(f"sacctmgr add cluster failed: {add.stdout}{add.stderr}\n{_tail(log)}")

    def _start_slurmctld(self) -> None:
        log = self._log("slurmctld")
        if not self._running("slurmctld"):
            self._spawn(["slurmctld"], log)
        self._wait(lambda: "UP" in self._run(["scontrol", "ping"]).stdout, "slurmctld to answer ping", log,
                   daemon="slurmctld")

    def _start_slurmd(self) -> None:
        log = self._log("slurmd")
        if not self._running("slurmd"):
            self._spawn(["slurmd", "-N", NODE], log)

        def node_ready() -> bool:
            state = self._node_state()
            if any(bad in state for bad in ("drain", "down", "fail")) and self._running("slurmd"):
                # Left DOWN/DRAIN by an earlier run (or a crash): put it back into service.
                if self._run(["scontrol", "update", f"nodename={NODE}", "state=resume"]).returncode == 0:
                    self.actions.append(f"resumed node {NODE} (was {state})")
            return state in HEALTHY_NODE_STATES

        self._wait(node_ready, f"node {NODE} to become idle (state: {{}})", log, daemon="slurmd",
                   detail=self._node_state)

    # ----------------------------------------------------------------- helpers
    def _run(self, cmd: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess(cmd, 1, "", str(exc))

    def _spawn(self, cmd: list[str], log: Path, user: str | None = None, forks: bool = True):
        """Start a daemon detached from us (own session), its stdout/stderr going to `log`.

        Slurm daemons and munged fork and the parent exits, with a non-zero status when the daemon
        could not start; we wait for that. mariadbd stays in the foreground (`forks=False`).
        """
        self.actions.append(f"started {cmd[0]}")
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True, user=user)
        if forks:
            try:
                rc = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise SlurmError(f"{cmd[0]} did not daemonize; tail of {log}:\n{_tail(log)}") from None
            if rc != 0:
                raise SlurmError(f"{' '.join(cmd)} exited with {rc}; tail of {log}:\n{_tail(log)}")
        return proc

    def _wait(self, ready, what: str, log: Path, daemon: str | None = None, detail=None) -> None:
        """Poll `ready` until true; fail with the log's tail on timeout or as soon as `daemon` died."""
        t0 = time.monotonic()

        def ready_or_dead() -> bool:
            # Daemons write their pid file right after forking; allow a moment for that.
            if daemon and time.monotonic() - t0 > 2 and not self._running(daemon):
                raise SlurmError(f"{daemon} is not running (while waiting for {what.format('?')}); "
                                 f"tail of {log}:\n{_tail(log)}")
            return ready()

        if not self._poll(ready_or_dead, self.timeout):
            what = what.format(detail() if detail else "")
            raise SlurmError(f"timed out after {self.timeout:.0f} s waiting for {what}; "
                             f"tail of {log}:\n{_tail(log)}")

    @staticmethod
    def _poll(ready, timeout: float, interval: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if ready():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(interval)

    def _terminate(self, pids: dict[str, int], grace: float = 20) -> None:
        """SIGTERM every daemon in `pids` (name -> pid), then SIGKILL what is left after `grace` s."""
        def gone() -> bool:
            return not any(_pid_alive(pid, name) for name, pid in pids.items())

        for pid in pids.values():
            os.kill(pid, signal.SIGTERM)
        if not self._poll(gone, grace, interval=0.1):
            for name, pid in pids.items():
                if _pid_alive(pid, name):
                    print(f"harness: {name} ignored SIGTERM for {grace:.0f} s; killing it", file=sys.stderr)
                    os.kill(pid, signal.SIGKILL)
            self._poll(gone, 5, interval=0.1)

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _pid(self, name: str) -> int | None:
        try:
            return int(self._pid_file(name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _running(self, name: str) -> bool:
        pid = self._pid(name)
        return pid is not None and _pid_alive(pid, name)

    def _munge_works(self) -> bool:
        cred = self._run(["munge", "-n", "-S", str(MUNGE_SOCKET)], timeout=5)
        if cred.returncode != 0:
            return False
        return subprocess.run(["unmunge", "-S", str(MUNGE_SOCKET)], input=cred.stdout, text=True,
                              env=self.env, capture_output=True, timeout=5).returncode == 0

    def _sql(self, statement: str) -> subprocess.CompletedProcess:
        return self._run(["mariadb", "--no-defaults", f"--socket={self.db_socket}", "-u", "root",
                          "-e", statement], timeout=10)

    def _clusters(self) -> list[str]:
        out = self._run(["sacctmgr", "-n", "-P", "show", "cluster", "format=cluster"]).stdout
        return out.split()

    def _node_state(self) -> str:
        out = self._run(["sinfo", "-h", "-n", NODE, "-o", "%T"]).stdout.strip()
        return out.splitlines()[0] if out else "unknown"


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise SlurmError("MemTotal not found in /proc/meminfo")


def main(argv: list[str] | None = None) -> int:
    """CLI: start|stop|status, printing what was done and how long it took."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in {"start", "stop", "status"}:
        print("usage: python -m tests.slurm.harness start|stop|status", file=sys.stderr)
        return 2
    cluster = SlurmCluster()
    t0 = time.monotonic()
    if args[0] == "start":
        missing = missing_binaries()
        if missing:
            print(f"missing programs: {' '.join(missing)} (run .ci/install-debian-packages.sh)", file=sys.stderr)
            return 1
        try:
            started = cluster.start()
        except SlurmError as exc:
            print(f"failed to start: {exc}", file=sys.stderr)
            return 1
        took = time.monotonic() - t0
        print(f"{'; '.join(cluster.actions)}: up in {took:.1f} s" if started
              else f"already up ({took:.1f} s to check)")
        print(f"export SLURM_CONF={cluster.conf}")
        return 0
    if args[0] == "stop":
        stopped = cluster.stop()
        took = time.monotonic() - t0
        print(f"stopped {', '.join(stopped)} in {took:.1f} s" if stopped else "nothing of ours was running")
        return 0
    print(cluster.status())
    return 0 if cluster.is_up() else 1


if __name__ == "__main__":
    sys.exit(main())
