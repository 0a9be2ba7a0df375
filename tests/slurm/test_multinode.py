"""Sweeps and runs across the nodes of the real test cluster: array tasks on every node, one DDP run on two
nodes (two at once), a node that dies under a sweep, and preemption of a two-node run."""

import datetime
import subprocess
import sys

import pytest

from retina_seg.exit_codes import EXIT_BAD_INPUT
from retina_seg.records.run_folder import read_epoch_table, read_metrics
from tests.helpers.slurm import ON_SLURM, poll, preempt_once, run, sacct_fields, submitit_logs, wait_ended
from tests.helpers.sweeps import SWEEP_RUN, evaluate_in_process, multirun, report_rows, run_dirs

TWO_NODES = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.num_nodes=2", "trainer.devices=1"]
COMET_OFFLINE = ["logger=comet", "logger.comet.mode=offline"]


def sacct_times(cluster, job: str) -> dict[str, tuple[datetime.datetime, datetime.datetime]]:
    """{job id: (start, end)} of every allocation of ``job``, from accounting."""
    return {
        jobid: (datetime.datetime.fromisoformat(start), datetime.datetime.fromisoformat(end))
        for jobid, (start, end) in sacct_fields(cluster, job, "Start", "End").items()
        if "Unknown" not in (start, end)
    }


@pytest.fixture(scope="module")
def two_node_sweep(slurm_cluster, tmp_path_factory):
    """Two DDP runs of two nodes each (one task per node), as one array: both fit on the cluster at once."""
    sweep_dir = tmp_path_factory.mktemp("two_nodes") / "sweep"
    result = multirun(
        sweep_dir,
        *SWEEP_RUN,
        *ON_SLURM,
        *TWO_NODES,
        *COMET_OFFLINE,
        "trainer.max_epochs=2",
        "optimizer.lr=1e-3,1e-4",
        env={**slurm_cluster.env, "COMET_API_KEY": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:] + submitit_logs(sweep_dir)[-3000:]
    return sweep_dir


def test_a_two_node_run_is_one_job_with_one_rank_on_each_node(slurm_cluster, two_node_sweep):
    script = next((two_node_sweep / ".submitit").rglob("*_submission.sh")).read_text()
    assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=1" in script
    for run_dir in run_dirs(two_node_sweep):
        metrics = read_metrics(run_dir)
        assert metrics["status"] == "completed"
        assert [r["rank"] for r in metrics["ranks"]] == [0, 1]
        assert sorted(r["node"] for r in metrics["ranks"]) == slurm_cluster.nodes  # one rank on each node
        assert metrics["slurm_node"] == metrics["ranks"][0]["node"]


def test_a_two_node_run_writes_one_record_archive_and_checkpoint(two_node_sweep, tmp_path):
    for run_dir in run_dirs(two_node_sweep):
        assert len(list(run_dir.rglob("metrics.json"))) == 1
        assert len(list((run_dir / "comet").glob("*.zip"))) == 1
        assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
        single = evaluate_in_process(run_dir / "checkpoints" / "best.ckpt", tmp_path / run_dir.name)
        assert read_metrics(run_dir)["val_IoU"] == pytest.approx(single["val_IoU"], abs=1e-6)


def test_two_multi_node_runs_at_once_meet_on_different_ports(slurm_cluster, two_node_sweep):
    meeting_points = [read_metrics(d)["rendezvous"] for d in run_dirs(two_node_sweep)]
    assert len(set(meeting_points)) == 2 and all(m.startswith("127.0.0.1:") for m in meeting_points)
    array = next(p.name for p in (two_node_sweep / ".submitit").iterdir() if p.name.isdigit())
    times = poll(lambda: (t := sacct_times(slurm_cluster, array)) and len(t) == 2 and t, 60, "sacct times")
    (start_a, end_a), (start_b, end_b) = times.values()
    assert max(start_a, start_b) < min(end_a, end_b)  # they ran at the same time


def test_a_job_shape_that_differs_from_the_trainer_fails_fast(slurm_cluster, tmp_path):
    """trainer.num_nodes=2 in a one-node job would wait forever for rank 1; it fails at once instead."""
    sweep_dir = tmp_path / "sweep"
    result = multirun(
        sweep_dir, *SWEEP_RUN, *ON_SLURM, *TWO_NODES, "hydra.launcher.nodes=1", env=slurm_cluster.env, timeout=120
    )
    assert result.returncode == EXIT_BAD_INPUT  # a config the job cannot run (retina_seg/exit_codes.py)
    failed = read_metrics(run_dirs(sweep_dir)[0])
    assert failed["status"] == "failed"
    assert "trainer.num_nodes=2 but the SLURM job has 1 node(s) (hydra.launcher.nodes)" in failed["error"]


def test_a_node_that_dies_mid_run_loses_nothing(slurm_cluster, tmp_path):
    """Two runs, one per node (each task takes a whole node's CPUs): a long one and a short one. The long
    run's node crashes (slurmd, its slurmstepds and their children killed): SLURM marks it DOWN, requeues
    the job onto the surviving node once the short run has left it, and the run resumes from its last.ckpt
    and completes; the short run completes untouched. The node then comes back and takes work again."""
    sweep_dir, epochs = tmp_path / "sweep", 24
    command = [
        sys.executable,
        "-m",
        "retina_seg.train",
        "-m",
        *SWEEP_RUN,
        *ON_SLURM,
        "hydra.launcher.cpus_per_task=2",
        f"trainer.max_epochs={epochs},12",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    with open(tmp_path / "launcher.log", "w") as log:
        launcher = subprocess.Popen(command, env=slurm_cluster.env, stdout=log, stderr=subprocess.STDOUT)
    victim, survivor, node = sweep_dir / "0", sweep_dir / "1", None
    try:

        def running_on_both_nodes():
            records = [read_metrics(d) if (d / "metrics.json").exists() else None for d in (victim, survivor)]
            ready = all(r and r["status"] == "running" and r.get("epochs_done", 0) >= 3 for r in records)
            return ready and len({r["slurm_node"] for r in records}) == 2 and records

        node = poll(running_on_both_nodes, 180, "both runs to train, one on each node")[0]["slurm_node"]
        done_at_crash = len(read_epoch_table(victim))
        killed = slurm_cluster.crash_node(node)
        assert len(killed) >= 3  # slurmd, the job's slurmstepd, the training process
        poll(lambda: "down" in slurm_cluster.node_state(node), 90, f"node {node} to be marked down")
        assert launcher.wait(timeout=400) == 0, (tmp_path / "launcher.log").read_text()[-3000:]
    finally:
        if launcher.poll() is None:
            launcher.kill()
        if node is not None:  # the node comes back whatever happened, so later tests have the whole cluster
            slurm_cluster.start_node(node)
    metrics, log = read_metrics(victim), (victim / "train.log").read_text()
    resumed = metrics["resumed_from_epoch"]
    assert done_at_crash - 1 <= resumed <= done_at_crash, (done_at_crash, log[-3000:])  # at most one epoch lost
    assert (
        f"Resuming from checkpoint {victim / 'checkpoints' / 'last.ckpt'}: {resumed} epoch(s) done, "
        f"continuing at epoch {resumed}"
    ) in log
    assert metrics["status"] == "completed" and metrics["slurm_node"] != node
    assert [row["epoch"] for row in read_epoch_table(victim)] == list(range(epochs))
    untouched = read_metrics(survivor)
    assert untouched["status"] == "completed" and "resumed_from_epoch" not in untouched
    assert [row["status"] for row in report_rows(sweep_dir)] == ["completed", "completed"]
    job = run(
        slurm_cluster, "sbatch", "--parsable", f"--nodelist={node}", "--output=/dev/null", "--wrap", "true"
    ).split(";")[0]
    assert wait_ended(slurm_cluster, job, timeout=60)[job][0] == "COMPLETED"


def test_usr2_requeues_a_two_node_run_once_and_it_resumes(slurm_cluster, tmp_path):
    """Preemption across nodes: USR2 reaches the job's tasks; rank 0 requeues the job once, which stops the
    ranks on both nodes (rank 1 may be blocked in a collective and never see the signal); the job resumes
    from last.ckpt on both nodes and completes with one metrics.json."""
    sweep_dir, epochs = tmp_path / "sweep", 12
    run_dir = sweep_dir / "0"
    job, done_when_signalled = preempt_once(
        slurm_cluster, sweep_dir, tmp_path / "launcher.log", *TWO_NODES, f"trainer.max_epochs={epochs}"
    )
    logs = submitit_logs(sweep_dir)
    # Rank 0's handler requeues (the job's Restarts=1 above, REQUEUED once below); its own "Requeued job"
    # line may be cut off by the requeue's SIGTERM, so SLURM's record is what is asserted.
    assert "Caught signal SIGUSR2" in logs
    for task in (0, 1):  # every rank was stopped and started again once, and finished once
        out = (sweep_dir / ".submitit" / job / f"{job}_{task}_log.out").read_text(errors="replace")
        assert out.count(f"global_rank={task}(2)") == 2 and out.count("Job completed successfully") >= 1
    assert len(list(sweep_dir.rglob("metrics.json"))) == 1
    metrics = read_metrics(run_dir)
    assert done_when_signalled - 1 <= metrics["resumed_from_epoch"] < epochs
    assert metrics["status"] == "completed" and metrics["epochs"] == epochs
    assert sorted(r["node"] for r in metrics["ranks"]) == slurm_cluster.nodes
    assert [row["epoch"] for row in read_epoch_table(run_dir)] == list(range(epochs))
    assert run(slurm_cluster, "sacct", "-D", "-X", "-n", "-j", job, "-o", "State").split().count("REQUEUED") == 1
