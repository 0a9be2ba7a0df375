"""SlurmCluster: bring the cluster up, check it, take it down, and crash or restart one of its nodes."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from devtools.slurm_cluster.config import write_configs
from devtools.slurm_cluster.daemons import ClusterDaemons
from devtools.slurm_cluster.errors import SlurmError
from devtools.slurm_cluster.nodes import job_processes, not_ended
from devtools.slurm_cluster.processes import pid_alive, poll, terminate
from devtools.slurm_cluster.settings import CLUSTER, DAEMONS, HEALTHY_NODE_STATES, PARTITION, STOP_GROUPS


class SlurmCluster(ClusterDaemons):
    """Bring up, check and tear down the cluster of ``nodes`` nodes whose files live under ``root``."""

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
        write_configs(self)
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
        log = self.log_file(f"slurmd.{node}")
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

    def study_database(self, name: str) -> str:
        """A fresh, empty database on the cluster's MariaDB (the one slurmdbd uses) with its own user, for an
        Optuna study beside the accounting; returns its SQLAlchemy URL (mysql+pymysql over TCP)."""
        if not name.isidentifier():
            raise SlurmError(f"database name {name!r}: letters, digits and underscores only")
        user, password = f"{name}_user"[:32], f"{name}_pw"
        created = self._sql(
            f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}; "
            f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'; "
            f"GRANT ALL ON {name}.* TO '{user}'@'127.0.0.1';"
        )
        if created.returncode != 0:
            raise SlurmError(f"could not create database {name}: {created.stderr}")
        return f"mysql+pymysql://{user}:{password}@127.0.0.1:{self.port_base}/{name}"

    def crash_node(self, node: str) -> list[int]:
        """What a node's crash looks like to SLURM: its slurmd, its slurmstepds and every process under
        them end at once (SIGKILL). Killing slurmd alone would leave the job's tasks running as orphans.
        Returns the pids killed."""
        slurmd = self._pid("slurmd", node)
        killed = [pid for pid in [slurmd] if pid is not None]
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # A task may fork (a DataLoader worker, submitit's own child) while the first pass kills: pass again
        # until no process of the node is left, as nothing of a crashed node survives.
        for _ in range(20):
            victims = [pid for pid in job_processes(node) if not_ended(pid)]
            if not victims:
                break
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed += [pid for pid in victims if pid not in killed]
            time.sleep(0.2)
        else:
            raise RuntimeError(f"node {node}: processes {victims} survive SIGKILL")
        self.pid_file("slurmd", node).unlink(missing_ok=True)
        return killed

    def stop(self) -> list[str]:
        """Stop, in reverse order, the daemons this cluster started (those with a pid file here).

        Running jobs are cancelled first so no slurmstepd is left behind. A munged that was already
        running before us has no pid file here and is left alone. Returns the names stopped.
        """
        if self._running("slurmctld"):
            self._run(["scancel", f"--partition={PARTITION}"])
            poll(lambda: not self._run(["squeue", "-h"]).stdout.strip(), 10)
        stopped = []
        for group in STOP_GROUPS:
            ours = {
                (name, node): self._pid(name, node)
                for name in group
                for node in self._instances(name)
                if self._running(name, node)
            }
            terminate(ours)
            stopped += [name if node is None else f"{name} {node}" for name, node in ours]
            for name in group:
                for node in self._instances(name):
                    self.pid_file(name, node).unlink(missing_ok=True)
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
                if pid is not None and pid_alive(pid, name):
                    lines.append(f"{label:20s} pid {pid}")
                elif name == "munged" and self._munge_works():
                    lines.append(f"{label:20s} running (not started by this cluster)")
                else:
                    lines.append(f"{label:20s} not running")
        lines.append(f"cluster    {'UP' if self.is_up() else 'DOWN'} (SLURM_CONF={self.conf})")
        return "\n".join(lines)
