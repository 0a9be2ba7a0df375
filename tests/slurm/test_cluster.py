"""The real cluster does what the submitit launcher relies on: runs batch jobs and arrays, reports
states through sacct (accounting), cancels promptly and forwards USR2 to the batch script."""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from devtools.slurm_cluster import SlurmCluster, SlurmError
from tests.helpers.slurm import poll, run, wait_ended


def squeue_state(cluster, job: str) -> str:
    return run(cluster, "squeue", "-h", "-j", job, "-o", "%T")


@pytest.fixture
def submit(slurm_cluster, tmp_path):
    """sbatch with a short time limit, working in tmp_path; cancels leftovers after the test."""
    jobs = []

    def _submit(*args: str) -> str:
        out = run(slurm_cluster, "sbatch", "--parsable", "--time=2", f"--chdir={tmp_path}", *args)
        job = out.split(";")[0]  # --parsable prints "id" or "id;cluster"
        jobs.append(job)
        return job

    yield _submit
    if jobs:
        subprocess.run(["scancel", *jobs], env=slurm_cluster.env, capture_output=True, timeout=30)


def test_wrap_job_completes_and_writes_output(slurm_cluster, submit, tmp_path):
    job = submit(f"--output={tmp_path / 'out.txt'}", "--wrap", "echo hello from $SLURM_JOB_ID")
    states = wait_ended(slurm_cluster, job)
    assert states[job][0] == "COMPLETED"
    assert (tmp_path / "out.txt").read_text().strip() == f"hello from {job}"


def test_sacct_reports_state_and_exit_code(slurm_cluster, submit):
    good = submit("--output=/dev/null", "--wrap", "true")
    bad = submit("--output=/dev/null", "--wrap", "exit 3")
    assert wait_ended(slurm_cluster, good)[good] == ("COMPLETED", "0:0")
    assert wait_ended(slurm_cluster, bad)[bad] == ("FAILED", "3:0")


def test_job_array_tasks_complete_with_array_env(slurm_cluster, submit, tmp_path):
    job = submit("--array=0-1", "--output=task_%a.out", "--wrap", "echo $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID")
    states = wait_ended(slurm_cluster, job, n=2)
    assert states == {f"{job}_0": ("COMPLETED", "0:0"), f"{job}_1": ("COMPLETED", "0:0")}
    for task in (0, 1):
        assert (tmp_path / f"task_{task}.out").read_text().split() == [job, str(task)]


def test_scancel_is_reported_cancelled_within_30s(slurm_cluster, submit):
    job = submit("--output=/dev/null", "--wrap", "sleep 300")
    poll(lambda: squeue_state(slurm_cluster, job) == "RUNNING", 30, f"job {job} to run")
    cancelled_at = time.monotonic()
    run(slurm_cluster, "scancel", job)
    states = wait_ended(slurm_cluster, job, timeout=30)
    assert states[job][0] == "CANCELLED"
    assert time.monotonic() - cancelled_at < 30


BATCH_TRAPS_USR2 = """\
#!/bin/bash
trap 'echo "got USR2" > trapped.txt; kill $sleeper; exit 0' USR2
touch ready.txt
sleep 120 &
sleeper=$!
wait $sleeper
"""


def test_scancel_signal_usr2_reaches_batch_script(slurm_cluster, submit, tmp_path):
    script = tmp_path / "trap.sh"
    script.write_text(BATCH_TRAPS_USR2)
    job = submit("--output=out.txt", str(script))
    # Signal only once the trap is installed, or USR2 would simply kill bash.
    poll(lambda: (tmp_path / "ready.txt").exists(), 30, "the batch script to install its trap")
    run(slurm_cluster, "scancel", "--signal=USR2", "--batch", job)
    poll(lambda: (tmp_path / "trapped.txt").exists(), 15, "the script to trap USR2")
    assert (tmp_path / "trapped.txt").read_text().strip() == "got USR2"
    assert wait_ended(slurm_cluster, job)[job] == ("COMPLETED", "0:0")


def test_a_second_cluster_of_four_nodes_runs_beside_the_first(slurm_cluster, short_tmp):
    """The node count is a parameter and every daemon has its own port: a 4-node cluster on other ports
    comes up next to the session's cluster, runs one task on each of its nodes, and goes down again."""
    second = SlurmCluster(short_tmp / "second", nodes=4, port_base=slurm_cluster.port_base + 200)
    try:
        assert second.start(export=False)
        assert second.nodes == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
        out = run(second, "srun", "-N4", "--ntasks-per-node=1", "--time=1", "printenv", "SLURMD_NODENAME", timeout=60)
        assert sorted(out.split()) == second.nodes
        assert slurm_cluster.is_up()  # the first cluster is untouched
    finally:
        second.stop()
    assert not second.is_up() and slurm_cluster.is_up()


def test_a_folder_too_deep_for_slurmstepds_sockets_is_refused_naming_it(tmp_path):
    deep = tmp_path / ("d" * 80)
    with pytest.raises(SlurmError, match=f"cluster folder {deep} is too deep"):
        SlurmCluster(deep, nodes=2)


@pytest.fixture
def short_tmp():
    """A folder near the root: pytest's own (deeper under xdist) can exceed the socket paths' limit."""
    folder = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
