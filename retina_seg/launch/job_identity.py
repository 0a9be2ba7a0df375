"""Who a run is: the job id that keys the sweep table and names the Comet experiment."""

import os
import socket
import subprocess
from pathlib import Path

# Set by a search's worker (retina_seg/sweeps/trial_worker.py) while it runs a trial: the trial's number.
SEARCH_TRIAL_ENV = "RETINA_SEG_SEARCH_TRIAL"


def job_id(hydra_job_id: str | None = None) -> str:
    """SLURM array runs are ``<array>_<task>``, other SLURM jobs their job id, else the launcher's id.

    The launcher's id is Hydra's ``hydra.job.id``: the job number under the basic launcher and the
    process id under submitit_local; a search sets it to the trial number. A plain single run falls back to the
    process id. A search's worker job runs several trials: under SLURM each is ``<worker's id>_trial<number>``.
    """
    slurm = _slurm_job_id()
    if slurm is not None:
        trial = os.environ.get(SEARCH_TRIAL_ENV)
        return slurm if trial is None else f"{slurm}_trial{trial}"
    if hydra_job_id not in (None, "", "???"):
        return str(hydra_job_id)
    return str(os.getpid())


def _slurm_job_id() -> str | None:
    """``<array>_<task>`` for an array task, else the SLURM job id, else None (not under SLURM)."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def slurm_job_id() -> str | None:
    return os.environ.get("SLURM_JOB_ID")


def node_name() -> str:
    """The SLURM node this process runs on (SLURMD_NODENAME), else the host name."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def rank_placement() -> list[dict]:
    """Where every rank of the run ran: [{"rank", "node"}] in rank order, gathered over the process group
    (a collective: every rank calls it); one entry for a single-process run."""
    import torch.distributed as dist

    here = {"rank": dist.get_rank() if dist.is_initialized() else 0, "node": node_name()}
    if not dist.is_initialized():
        return [here]
    placement = [None] * dist.get_world_size()
    dist.all_gather_object(placement, here)
    return placement


def rendezvous() -> str | None:
    """The address:port the ranks met at (set by Lightning for multi-process runs), else None."""
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    return f"{addr}:{port}" if addr and port else None


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the code that ran, or None outside a git checkout."""
    here = cwd or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
