"""A real multi-node SLURM cluster on this one host, for the tests, the benchmarks and CI.

Why a real one: the submitit launcher talks to sbatch/squeue/sacct/scancel and reacts to signals and
requeues; only the real daemons show how a sweep behaves when a job is cancelled, preempted or fails, or
when a node dies under it.

What runs (in start order): munged, mariadbd, slurmdbd, slurmctld, and one ``slurmd -N <node>`` per node.
Debian's Slurm is built with MULTIPLE_SLURMD, so each slurmd is a node of its own: nodes are named by
loopback addresses (127.0.0.1, 127.0.0.2, ...) because Lightning and submitit take the first host name of
SLURM_NODELIST as the rendezvous address and such names resolve without /etc/hosts. Every daemon has a
port of its own, derived from ``port_base``, so a second cluster on other ports does not collide.
Everything it writes (configs, state, spool, logs, pid files, the database) lives under one folder,
``/tmp/retina-seg-slurm`` unless ``RETINA_SEG_SLURM_DIR`` says otherwise. Tools find the config through
``SLURM_CONF`` (``env`` has it; ``start(export=True)`` also puts it into ``os.environ``).

Usage::

    python -m devtools.slurm_cluster start|stop|status      # RETINA_SEG_SLURM_NODES nodes, default 2

Settings learned the hard way (see /work/shared/STACK-FACTS.md):
- munged must listen on its default socket; a custom socket broke sacct/sacctmgr.
- Accounting (slurmdbd) is required: without it sacct fails and submitit waits forever on a
  cancelled job.
- No systemd and no cgroups here: proctrack/linuxproc, task/none, jobacct_gather/none.
"""

from __future__ import annotations

import contextlib
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
CONTROLLER = "localhost"  # slurmctld and slurmdbd listen here; the nodes are 127.0.0.N
DEFAULT_NODES = 2
# Ports: port_base + 0 MariaDB (not 3306, so a system MariaDB does not get in the way), + 1 slurmdbd,
# + 2 slurmctld, + 10 + i the slurmd of node i.
DEFAULT_PORT_BASE = 6900
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
DB_USER, DB_PASS, DB_NAME = "slurm", "slurm", "slurm_acct_db"
# A dead node: SLURM marks it DOWN after SlurmdTimeout without an answer and requeues its batch jobs; a job
# step credential lives cred_expire seconds, and a requeued job waits for that before it starts again.
SLURMD_TIMEOUT_S, CRED_EXPIRE_S = 10, 10

# Start order; stop() goes in reverse. Values are the process names (/proc/PID/comm) we expect.
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")  # one slurmd per node
# stop() order: groups stopped one after another, the daemons within a group together. slurmctld
# flushes to slurmdbd, slurmdbd to mariadb, and all of them need munged until they are gone.
STOP_GROUPS = (("slurmd", "slurmctld"), ("slurmdbd",), ("mariadbd", "munged"))
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

HEALTHY_NODE_STATES = {"idle", "mixed", "allocated", "completing"}


class SlurmError(RuntimeError):
    """The cluster could not be brought up (the message carries the tail of the relevant log)."""


def _path_with_sbin() -> str:
    """PATH plus the sbin folders where Debian puts the daemons (a non-login PATH may lack them)."""
    path = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(path + [d for d in ("/usr/sbin", "/sbin") if d not in path])


def missing_binaries() -> list[str]:
    """Names of the programs the cluster needs that are not installed."""
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
    comm, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
    if state == "Z":
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return comm == name[:15]


def node_names(count: int) -> list[str]:
    return [f"127.0.0.{index + 1}" for index in range(count)]


class SlurmCluster:
    """Bring up, check and tear down the cluster of ``nodes`` nodes whose files live under ``root``."""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        timeout: float = 60.0,
        nodes: int | None = None,
        port_base: int = DEFAULT_PORT_BASE,
    ):
        self.root = Path(root or os.environ.get("RETINA_SEG_SLURM_DIR") or DEFAULT_DIR)
        self.timeout = timeout
        count = nodes or int(os.environ.get("RETINA_SEG_SLURM_NODES", DEFAULT_NODES))
        if count < 1:
            raise SlurmError(f"a cluster needs at least one node, got {count}")
        self.nodes = node_names(count)
        self.port_base = port_base
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
        """Controller answers, every node can take jobs, and accounting knows our cluster."""
        if not self.conf.exists() or self._configured_nodes() != self.nodes:
            return False
        ping = self._run(["scontrol", "ping"])
        if ping.returncode != 0 or "UP" not in ping.stdout:
            return False
        if any(self.node_state(node) not in HEALTHY_NODE_STATES for node in self.nodes):
            return False
        return CLUSTER in self._clusters()

    def start(self, export: bool = True) -> bool:
        """Bring the cluster up; return False (and do nothing) when it already is up and healthy.

        Idempotent on purpose: tests, CI and developers may each call it. Daemons that are still
        running from an earlier start are kept; only missing ones are started. A running cluster with
        another node list is stopped first (its config is regenerated).
        """
        if export:
            os.environ["SLURM_CONF"] = str(self.conf)
        self.actions = []
        if self.is_up():
            return False
        if self.conf.exists() and self._configured_nodes() != self.nodes:
            self.stop()
        for d in (self.etc, self.log_dir, self.run_dir, self.root / "state", self.root / "spool"):
            d.mkdir(parents=True, exist_ok=True)
        self._write_configs()
        self._start_munged()
        self._start_mariadb()
        self._start_slurmdbd()
        self._start_slurmctld()
        for node in self.nodes:
            self.start_node(node)
        return True

    def start_node(self, node: str) -> None:
        """Start the node's slurmd (unless it runs) and wait until the node takes jobs again."""
        (self.root / "spool" / node).mkdir(parents=True, exist_ok=True)
        log = self._log(f"slurmd.{node}")
        if not self._running("slurmd", node):
            self._spawn(["slurmd", "-N", node], log)

        def node_ready() -> bool:
            state = self.node_state(node)
            if any(bad in state for bad in ("drain", "down", "fail")) and self._running("slurmd", node):
                # Left DOWN/DRAIN by an earlier run (or a crash): put it back into service.
                if self._run(["scontrol", "update", f"nodename={node}", "state=resume"]).returncode == 0:
                    self.actions.append(f"resumed node {node} (was {state})")
            return state in HEALTHY_NODE_STATES

        self._wait(
            node_ready,
            f"node {node} to become idle (state: {{}})",
            log,
            daemon=("slurmd", node),
            detail=lambda: self.node_state(node),
        )

    def crash_node(self, node: str) -> list[int]:
        """What a node's crash looks like to SLURM: its slurmd, its slurmstepds and every process under
        them end at once (SIGKILL). Killing slurmd alone would leave the job's tasks running as orphans.
        Returns the pids killed."""
        slurmd = self._pid("slurmd", node)
        stepds = [
            pid
            for pid in _pids_named("slurmstepd")
            if _environ(pid).get("SLURMD_NODENAME") == node
            or any(_environ(child).get("SLURMD_NODENAME") == node for child in _descendants(pid))
        ]
        victims = [pid for pid in [slurmd, *stepds] if pid is not None]
        victims += [child for pid in stepds for child in _descendants(pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._pid_file("slurmd", node).unlink(missing_ok=True)
        return victims

    def stop(self) -> list[str]:
        """Stop, in reverse order, the daemons this cluster started (those with a pid file here).

        Running jobs are cancelled first so no slurmstepd is left behind. A munged that was already
        running before us has no pid file here and is left alone. Returns the names stopped.
        """
        if self._running("slurmctld"):
            self._run(["scancel", f"--partition={PARTITION}"])
            self._poll(lambda: not self._run(["squeue", "-h"]).stdout.strip(), 10)
        stopped = []
        for group in STOP_GROUPS:
            ours = {
                (name, node): self._pid(name, node)
                for name in group
                for node in self._instances(name)
                if self._running(name, node)
            }
            self._terminate(ours)
            stopped += [name if node is None else f"{name} {node}" for name, node in ours]
            for name in group:
                for node in self._instances(name):
                    self._pid_file(name, node).unlink(missing_ok=True)
        return stopped

    def _instances(self, name: str) -> list[str | None]:
        """None for a daemon the cluster has one of; the node names for slurmd (every pid file's node)."""
        if name != "slurmd":
            return [None]
        return sorted(
            {*self.nodes, *(p.name[len("slurmd.") : -len(".pid")] for p in self.run_dir.glob("slurmd.*.pid"))}
        )

    def status(self) -> str:
        """One line per daemon (pid or 'not running') plus the overall verdict."""
        lines = []
        for name in DAEMONS:
            for node in self._instances(name):
                label = name if node is None else f"{name} {node}"
                pid = self._pid(name, node)
                if pid is not None and _pid_alive(pid, name):
                    lines.append(f"{label:20s} pid {pid}")
                elif name == "munged" and self._munge_works():
                    lines.append(f"{label:20s} running (not started by this cluster)")
                else:
                    lines.append(f"{label:20s} not running")
        lines.append(f"cluster    {'UP' if self.is_up() else 'DOWN'} (SLURM_CONF={self.conf})")
        return "\n".join(lines)

    # ----------------------------------------------------------------- configs
    def _write_configs(self) -> None:
        # Every node gets all of the host's CPUs (no cgroups enforce them), so two 2-node jobs of one CPU
        # per task fit at once; memory is shared out.
        cpus = len(os.sched_getaffinity(0))
        mem_mb = int(_mem_total_mb() * 0.85) // len(self.nodes)
        r, base = self.root, self.port_base
        node_lines = "\n".join(
            f"NodeName={node} NodeHostname={CONTROLLER} NodeAddr={node} Port={base + 10 + index} CPUs={cpus} "
            f"RealMemory={mem_mb} State=UNKNOWN"
            for index, node in enumerate(self.nodes)
        )
        slurm_conf = f"""\
# Written by devtools/slurm_cluster.py; regenerated on every start.
ClusterName={CLUSTER}
SlurmctldHost={CONTROLLER}
SlurmctldPort={base + 2}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire={CRED_EXPIRE_S}
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
AccountingStorageHost={CONTROLLER}
AccountingStoragePort={base + 1}
JobCompType=jobcomp/none
# Tests requeue preempted jobs and the jobs of a dead node; batch jobs are requeueable by default.
JobRequeue=1
SlurmdTimeout={SLURMD_TIMEOUT_S}
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
# %n: each slurmd its own spool, pid and log file.
SlurmdSpoolDir={r}/spool/%n
SlurmctldPidFile={self._pid_file("slurmctld")}
SlurmdPidFile={self.run_dir}/slurmd.%n.pid
SlurmctldLogFile={self._log("slurmctld")}
SlurmdLogFile={self.log_dir}/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=info
{node_lines}
PartitionName={PARTITION} Nodes={",".join(self.nodes)} Default=YES MaxTime=INFINITE State=UP
"""
        dbd_conf = f"""\
# Written by devtools/slurm_cluster.py; regenerated on every start.
AuthType=auth/munge
DbdHost={CONTROLLER}
DbdPort={base + 1}
SlurmUser=root
LogFile={self._log("slurmdbd")}
PidFile={self._pid_file("slurmdbd")}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={base}
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
        self._spawn(
            [
                "munged",
                f"--log-file={log}",
                f"--pid-file={munge_dir / 'munged.pid'}",
                f"--seed-file={munge_dir / 'munged.seed'}",
            ],
            self._log("munged"),
            user="munge",
        )
        self._wait(self._munge_works, "munged to answer", log)
        self._pid_file("munged").write_text((munge_dir / "munged.pid").read_text())

    def _start_mariadb(self) -> None:
        log = self._log("mariadb")
        if not self._running("mariadbd"):
            if not (self.db_dir / "mysql").is_dir():
                init = subprocess.run(
                    [
                        "mariadb-install-db",
                        "--no-defaults",
                        f"--datadir={self.db_dir}",
                        "--user=root",
                        "--auth-root-authentication-method=socket",
                        "--skip-test-db",
                    ],
                    env=self.env,
                    capture_output=True,
                    text=True,
                )
                if init.returncode != 0:
                    raise SlurmError(f"mariadb-install-db failed:\n{init.stdout}\n{init.stderr}")
            proc = self._spawn(
                [
                    "mariadbd",
                    "--no-defaults",
                    f"--datadir={self.db_dir}",
                    "--user=root",
                    f"--socket={self.db_socket}",
                    f"--pid-file={self._pid_file('mariadbd')}",
                    f"--port={self.port_base}",
                    "--bind-address=127.0.0.1",
                    "--skip-name-resolve",
                    f"--log-error={log}",
                ],
                log,
                forks=False,
            )

            def accepts() -> bool:
                if proc.poll() is not None:
                    raise SlurmError(f"mariadbd exited with {proc.returncode}; tail of {log}:\n{_tail(log)}")
                return self._sql("SELECT 1").returncode == 0

            self._wait(accepts, "mariadb to accept connections", log, daemon="mariadbd")
        grant = self._sql(
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASS}'; "
            f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';"
        )
        if grant.returncode != 0:
            raise SlurmError(f"could not create the slurm database user: {grant.stderr}")

    def _start_slurmdbd(self) -> None:
        log = self._log("slurmdbd")
        if not self._running("slurmdbd"):
            self._spawn(["slurmdbd"], log)
        self._wait(
            lambda: self._run(["sacctmgr", "-n", "show", "cluster"]).returncode == 0,
            "slurmdbd to answer sacctmgr",
            log,
            daemon="slurmdbd",
        )
        if CLUSTER not in self._clusters():
            self.actions.append(f"added cluster {CLUSTER} to accounting")
            add = self._run(["sacctmgr", "-i", "add", "cluster", CLUSTER])
            if add.returncode != 0:
                raise SlurmError(f"sacctmgr add cluster failed: {add.stdout}{add.stderr}\n{_tail(log)}")

    def _start_slurmctld(self) -> None:
        log = self._log("slurmctld")
        if not self._running("slurmctld"):
            self._spawn(["slurmctld"], log)
        self._wait(
            lambda: "UP" in self._run(["scontrol", "ping"]).stdout, "slurmctld to answer ping", log, daemon="slurmctld"
        )

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
            proc = subprocess.Popen(
                cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, user=user
            )
        if forks:
            try:
                rc = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise SlurmError(f"{cmd[0]} did not daemonize; tail of {log}:\n{_tail(log)}") from None
            if rc != 0:
                raise SlurmError(f"{' '.join(cmd)} exited with {rc}; tail of {log}:\n{_tail(log)}")
        return proc

    def _wait(self, ready, what: str, log: Path, daemon: str | tuple[str, str] | None = None, detail=None) -> None:
        """Poll `ready` until true; fail with the log's tail on timeout or as soon as `daemon` (a name, or
        (name, node) for a slurmd) died."""
        t0 = time.monotonic()
        instance = (daemon, None) if isinstance(daemon, str) else daemon

        def ready_or_dead() -> bool:
            # Daemons write their pid file right after forking; allow a moment for that.
            if instance and time.monotonic() - t0 > 2 and not self._running(*instance):
                raise SlurmError(
                    f"{' '.join(filter(None, instance))} is not running (while waiting for "
                    f"{what.format('?')}); tail of {log}:\n{_tail(log)}"
                )
            return ready()

        if not self._poll(ready_or_dead, self.timeout):
            what = what.format(detail() if detail else "")
            raise SlurmError(f"timed out after {self.timeout:.0f} s waiting for {what}; tail of {log}:\n{_tail(log)}")

    @staticmethod
    def _poll(ready, timeout: float, interval: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if ready():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(interval)

    def _terminate(self, pids: dict[tuple[str, str | None], int], grace: float = 20) -> None:
        """SIGTERM every daemon in `pids` ((name, node) -> pid), then SIGKILL what is left after `grace` s."""

        def gone() -> bool:
            return not any(_pid_alive(pid, name) for (name, _), pid in pids.items())

        for pid in pids.values():
            os.kill(pid, signal.SIGTERM)
        if not self._poll(gone, grace, interval=0.1):
            for (name, node), pid in pids.items():
                if _pid_alive(pid, name):
                    print(
                        f"slurm_cluster: {name} {node or ''} ignored SIGTERM for {grace:.0f} s; killing it",
                        file=sys.stderr,
                    )
                    os.kill(pid, signal.SIGKILL)
            self._poll(gone, 5, interval=0.1)

    def _pid_file(self, name: str, node: str | None = None) -> Path:
        """slurmd.<node>.pid for a node's slurmd (SlurmdPidFile uses %n), <name>.pid for the others."""
        return self.run_dir / (f"{name}.pid" if node is None else f"{name}.{node}.pid")

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _pid(self, name: str, node: str | None = None) -> int | None:
        try:
            return int(self._pid_file(name, node).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _running(self, name: str, node: str | None = None) -> bool:
        pid = self._pid(name, node)
        return pid is not None and _pid_alive(pid, name)

    def _munge_works(self) -> bool:
        cred = self._run(["munge", "-n", "-S", str(MUNGE_SOCKET)], timeout=5)
        if cred.returncode != 0:
            return False
        return (
            subprocess.run(
                ["unmunge", "-S", str(MUNGE_SOCKET)],
                input=cred.stdout,
                text=True,
                env=self.env,
                capture_output=True,
                timeout=5,
            ).returncode
            == 0
        )

    def _sql(self, statement: str) -> subprocess.CompletedProcess:
        return self._run(
            ["mariadb", "--no-defaults", f"--socket={self.db_socket}", "-u", "root", "-e", statement], timeout=10
        )

    def _clusters(self) -> list[str]:
        out = self._run(["sacctmgr", "-n", "-P", "show", "cluster", "format=cluster"]).stdout
        return out.split()

    def node_state(self, node: str) -> str:
        """SLURM's state of the node as sinfo prints it (idle, allocated, down*, ...)."""
        out = self._run(["sinfo", "-h", "-n", node, "-o", "%T"]).stdout.strip()
        return out.splitlines()[0] if out else "unknown"

    def _configured_nodes(self) -> list[str]:
        """The node names in the slurm.conf on disk (an earlier start's, maybe of another size)."""
        try:
            lines = self.conf.read_text().splitlines()
        except OSError:
            return []
        return [line.split()[0].split("=", 1)[1] for line in lines if line.startswith("NodeName=")]


def _pids_named(name: str) -> list[int]:
    """Pids of the running processes whose program name is `name`."""
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _pid_alive(int(p.name), name)]


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...), from /proc's parent links."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        todo += children
    return found


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise SlurmError("MemTotal not found in /proc/meminfo")


def main(argv: list[str] | None = None) -> int:
    """CLI: start|stop|status, printing what was done and how long it took."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in {"start", "stop", "status"}:
        print("usage: python -m devtools.slurm_cluster start|stop|status", file=sys.stderr)
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
        print(f"{'; '.join(cluster.actions)}: up in {took:.1f} s" if started else f"already up ({took:.1f} s to check)")
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
