"""The sweep's launcher waits through a requeue (retina_seg/sweeps/slurm_watch.py): accounting's NODE_FAIL is
believed only when the real controller no longer holds the job pending or running."""

from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

from retina_seg.sweeps.slurm_watch import RequeueAwareWatcher, controller_state, watching_requeues
from tests.helpers.slurm import run, wait_ended


def accounting_says(watcher: SlurmInfoWatcher, job: str, state: str) -> SlurmInfoWatcher:
    """The watcher as it is after a sacct call that reported `state` for `job` (read_info's own parsing)."""
    watcher.register_job(job)
    watcher._info_dict.update(watcher.read_info(f"JobID|State|NodeList\n{job}|{state}|127.0.0.1\n"))
    return watcher


def test_a_node_fail_is_the_end_only_once_the_controller_lets_the_job_go(slurm_cluster):
    # A held job: the controller keeps it PENDING, as it keeps a job it has requeued after a node failure
    # while accounting still reports the failed allocation's NODE_FAIL.
    job = run(slurm_cluster, "sbatch", "--parsable", "--hold", "--output=/dev/null", "--wrap", "true").split(";")[0]
    try:
        assert controller_state(job) == "PENDING"
        assert accounting_says(SlurmInfoWatcher(), job, "NODE_FAIL").is_done(job, mode="cache")  # submitit's own
        assert not accounting_says(RequeueAwareWatcher(), job, "NODE_FAIL").is_done(job, mode="cache")
        for state in ("COMPLETED", "FAILED", "TIMEOUT"):  # accounting's other ends stand as they are
            assert accounting_says(RequeueAwareWatcher(), job, state).is_done(job, mode="cache")
    finally:
        run(slurm_cluster, "scancel", job)
    wait_ended(slurm_cluster, job)
    assert controller_state(job) not in ("PENDING", "RUNNING")
    assert accounting_says(RequeueAwareWatcher(), job, "NODE_FAIL").is_done(job, mode="cache")


def test_the_launcher_uses_the_watcher_only_while_it_waits():
    original = SlurmJob.watcher
    with watching_requeues() as watcher:
        assert SlurmJob.watcher is watcher and isinstance(watcher, RequeueAwareWatcher)
        assert watcher._delay_s == original._delay_s
    assert SlurmJob.watcher is original
