"""How a sweep's launcher waits on its SLURM jobs: it does not give up on a job that SLURM is requeuing.

submitit reads each job's state from accounting (``sacct``) and takes NODE_FAIL as the end of the job. When a
node dies under a job that may be requeued, SLURM's controller holds the job PENDING again at once, but
accounting still reports NODE_FAIL until the requeued job's record is written: about 3 s on the test cluster
(devtools/slurm_cluster/, 2026-12-03), longer on a busy one. A status poll inside that window made the
launcher fail the sweep although the job went on to complete. Here a NODE_FAIL is believed only once the
controller (``squeue``) no longer holds the job in a state that leads back to running.
"""

import contextlib
import logging
import subprocess
from collections.abc import Iterator

from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

log = logging.getLogger(__name__)

# squeue states of a job that will (still or again) run: after a requeue it is PENDING.
REQUEUED_STATES = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "RESIZING", "SUSPENDED"}
)


def controller_state(job_id: str) -> str | None:
    """The job's state as the controller holds it now (``squeue``); None when it no longer does or is unreachable."""
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0] if out else None


class RequeueAwareWatcher(SlurmInfoWatcher):
    """submitit's watcher, except that a NODE_FAIL from accounting is checked with the controller."""

    def is_done(self, job_id: str, mode: str = "standard") -> bool:
        if not super().is_done(job_id, mode=mode):
            return False
        if self.get_state(job_id, mode="cache").upper() != "NODE_FAIL":
            return True
        held = controller_state(job_id)
        if held not in REQUEUED_STATES:
            return True
        log.info(f"job {job_id}: its node failed and SLURM holds it {held} again; waiting for the requeued job")
        return False


@contextlib.contextmanager
def watching_requeues() -> Iterator[RequeueAwareWatcher]:
    """submitit's SLURM jobs (which share one watcher, a class attribute) use a RequeueAwareWatcher inside."""
    original = SlurmJob.watcher
    SlurmJob.watcher = RequeueAwareWatcher(delay_s=original._delay_s)
    try:
        yield SlurmJob.watcher
    finally:
        SlurmJob.watcher = original
