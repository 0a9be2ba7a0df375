"""The plumbing under SlurmCluster: where one cluster's files live, running the SLURM tools against it, and
starting each of its daemons (munged, mariadbd, slurmdbd, slurmctld) unless it already runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from devtools.slurm_cluster.errors import SlurmError
from devtools.slurm_cluster.nodes import node_names
from devtools.slurm_cluster.processes import log_tail, path_with_sbin, pid_alive, poll
from devtools.slurm_cluster.settings import (
    CLUSTER,
    DB_NAME,
    DB_PASS,
    DB_USER,
    DEFAULT_DIR,
    DEFAULT_NODES,
    DEFAULT_PORT_BASE,
    MUNGE_SOCKET,
    UNIX_SOCKET_PATH_MAX,
)


class ClusterDaemons:
    """The files, tools and daemons of the cluster of ``nodes`` nodes whose files live under ``root``."""

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
        self._check_socket_paths()
        self.etc, self.log_dir, self.run_dir = self.root / "etc", self.root / "log", self.root / "run"
        self.conf = self.etc / "slurm.conf"
        self.db_dir = self.root / "mysql"
        self.db_socket = self.run_dir / "mariadb.sock"
        self.actions: list[str] = []  # what the last start() did, for the CLI and for debugging

    def _check_socket_paths(self) -> None:
        """slurmstepd makes a Unix socket at <root>/spool/<node>/<node>_<job>.<step>, and Linux takes at most
        107 bytes for its path: a deeper root fails every task launch with "Unspecified error" (slurmd's log
        says why), so it is refused here, naming the root."""
        longest = self.root.resolve() / "spool" / self.nodes[-1] / f"{self.nodes[-1]}_{'9' * 7}.{'9' * 3}"
        if len(str(longest).encode()) > UNIX_SOCKET_PATH_MAX:
            raise SlurmError(
                f"cluster folder {self.root} is too deep: slurmstepd's sockets under it would exceed "
                f"{UNIX_SOCKET_PATH_MAX} bytes; choose a shorter folder (e.g. under /tmp)"
            )

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses: the current one plus SLURM_CONF pointing at our config."""
        # A property, so that it follows later changes to os.environ.
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path_with_sbin()}

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
            self.log_file("munged"),
            user="munge",
        )
        self._wait(self._munge_works, "munged to answer", log)
        self.pid_file("munged").write_text((munge_dir / "munged.pid").read_text())

    def _start_mariadb(self) -> None:
        log = self.log_file("mariadb")
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
                    f"--pid-file={self.pid_file('mariadbd')}",
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
                    raise SlurmError(f"mariadbd exited with {proc.returncode}; tail of {log}:\n{log_tail(log)}")
                return self._sql("SELECT 1").returncode == 0

            self._wait(accepts, "mariadb to accept connections", log, daemon="mariadbd")
        grant = self._sql(
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASS}'; "
            f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';"
        )
        if grant.returncode != 0:
            raise SlurmError(f"could not create the slurm database user: {grant.stderr}")

    def _start_slurmdbd(self) -> None:
        log = self.log_file("slurmdbd")
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
                raise SlurmError(f"sacctmgr add cluster failed: {add.stdout}{add.stderr}\n{log_tail(log)}")

    def _start_slurmctld(self) -> None:
        log = self.log_file("slurmctld")
        if not self._running("slurmctld"):
            self._spawn(["slurmctld"], log)
        self._wait(
            lambda: "UP" in self._run(["scontrol", "ping"]).stdout, "slurmctld to answer ping", log, daemon="slurmctld"
        )

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
                raise SlurmError(f"{cmd[0]} did not daemonize; tail of {log}:\n{log_tail(log)}") from None
            if rc != 0:
                raise SlurmError(f"{' '.join(cmd)} exited with {rc}; tail of {log}:\n{log_tail(log)}")
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
                    f"{what.format('?')}); tail of {log}:\n{log_tail(log)}"
                )
            return ready()

        if not poll(ready_or_dead, self.timeout):
            what = what.format(detail() if detail else "")
            raise SlurmError(
                f"timed out after {self.timeout:.0f} s waiting for {what}; tail of {log}:\n{log_tail(log)}"
            )

    def pid_file(self, name: str, node: str | None = None) -> Path:
        """slurmd.<node>.pid for a node's slurmd (SlurmdPidFile uses %n), <name>.pid for the others."""
        return self.run_dir / (f"{name}.pid" if node is None else f"{name}.{node}.pid")

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _pid(self, name: str, node: str | None = None) -> int | None:
        try:
            return int(self.pid_file(name, node).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _running(self, name: str, node: str | None = None) -> bool:
        pid = self._pid(name, node)
        return pid is not None and pid_alive(pid, name)

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
