"""The nodes of the cluster: their names, and the processes a node's crash takes down with it."""

import contextlib
from pathlib import Path

from devtools.slurm_cluster.processes import pid_alive


def node_names(count: int) -> list[str]:
    return [f"127.0.0.{index + 1}" for index in range(count)]


def job_processes(node: str) -> list[int]:
    """The node's slurmstepds (found by the node name in their environment or their children's), every
    process under them, and every process whose environment names the node (a job's task that a dying
    stepd may already have handed to init)."""
    stepds = [
        pid
        for pid in pids_named("slurmstepd")
        if process_environ(pid).get("SLURMD_NODENAME") == node
        or any(process_environ(child).get("SLURMD_NODENAME") == node for child in descendants(pid))
    ]
    under = [child for pid in stepds for child in descendants(pid)]
    tasks = [pid for pid in all_pids() if process_environ(pid).get("SLURMD_NODENAME") == node]
    return list(dict.fromkeys(stepds + under + tasks))


def not_ended(pid: int) -> bool:
    """The process exists and is not a zombie (a killed child its parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def pids_named(name: str) -> list[int]:
    """Pids of the running processes whose program name is `name`."""
    return [pid for pid in all_pids() if pid_alive(pid, name)]


def process_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def descendants(pid: int) -> list[int]:
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
