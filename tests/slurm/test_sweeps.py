"""Sweeps through the submitit_slurm launcher (conf/hydra/launcher/slurm.yaml) on the real test cluster:
job arrays keyed by ``<array>_<task>``, the seed table, a failing run, requeue-and-resume, sweep
resumption, and DDP with two SLURM tasks."""

import re

import pytest

from retina_seg.exit_codes import EXIT_BAD_INPUT
from retina_seg.records.run_folder import read_epoch_table, read_metrics
from tests.helpers.environment import REPO_ROOT
from tests.helpers.slurm import ON_SLURM, job_states, poll, preempt_once, run, submitit_logs
from tests.helpers.sweeps import (
    REFERENCE_RUNS,
    SWEEP_RUN,
    assert_completed_rows,
    evaluate_in_process,
    file_mtimes,
    multirun,
    report_rows,
    run_dirs,
)

ARRAY_ID = re.compile(r"(\d+)_(\d+)")


@pytest.fixture(scope="module")
def slurm_grid(slurm_cluster, tmp_path_factory):
    """A 2-run grid as one SLURM job array, and its table before any test changes the folder."""
    sweep_dir = tmp_path_factory.mktemp("slurm_grid") / "sweep"
    result = multirun(sweep_dir, *SWEEP_RUN, *ON_SLURM, "optimizer.lr=1e-3,1e-4", env=slurm_cluster.env)
    assert result.returncode == 0, result.stderr[-3000:] + submitit_logs(sweep_dir)[-3000:]
    return sweep_dir, report_rows(sweep_dir)


def test_grid_is_one_job_array_keyed_by_array_and_task(slurm_cluster, slurm_grid):
    sweep_dir, rows = slurm_grid
    assert_completed_rows(rows, [1e-3, 1e-4])
    ids = [ARRAY_ID.fullmatch(row["Job id"]) for row in rows]
    assert all(ids) and {m[1] for m in ids} == {ids[0][1]} and [m[2] for m in ids] == ["0", "1"]
    array = ids[0][1]
    # The launcher returns on the tasks' result files; accounting records the end a moment later.
    expected = {f"{array}_0": ("COMPLETED", "0:0"), f"{array}_1": ("COMPLETED", "0:0")}
    poll(lambda: job_states(slurm_cluster, array) == expected, 60, f"sacct to show {expected}")
    slurm_ids = [read_metrics(d)["slurm_job_id"] for d in run_dirs(sweep_dir)]
    assert all(s.isdigit() for s in slurm_ids) and len(set(slurm_ids)) == 2
    assert "#SBATCH --array=0-1" in (sweep_dir / ".submitit" / array / f"{array}_submission.sh").read_text()


def test_resume_through_slurm_reruns_only_the_missing_run(slurm_cluster, slurm_grid):
    """Run 1 lost its metrics.json: skip_completed=true submits only it, into its own folder."""
    sweep_dir, _ = slurm_grid
    kept, lost = run_dirs(sweep_dir)
    (lost / "metrics.json").unlink()
    before = file_mtimes(kept)
    result = multirun(
        sweep_dir, *SWEEP_RUN, *ON_SLURM, "optimizer.lr=1e-3,1e-4", "skip_completed=true", env=slurm_cluster.env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skip_completed: 1 of 2 run(s) to launch" in result.stdout + result.stderr
    assert file_mtimes(kept) == before
    rerun = read_metrics(lost)
    assert rerun["status"] == "completed" and rerun["learning_rate"] == 1e-4 and rerun["resumed_from_epoch"] == 1
    assert rerun["job_id"] == rerun["slurm_job_id"]  # a single job now, not an array task
    assert [d.name for d in run_dirs(sweep_dir)] == ["0", "1"]


def test_reference_table_shortened_runs_nine_array_tasks_on_every_node(slurm_cluster, tmp_path):
    """The README's command, shortened: sweeps/reference_table.yaml with epoch_scale, the small U-Net and
    synthetic data appended after the sweep points (they win), a few seconds per run. The array's tasks
    land on every node of the cluster (each run records its node)."""
    sweep_dir = tmp_path / "reference_table"
    tiny = [o for o in SWEEP_RUN if not o.startswith(("data.batch_size", "trainer.max_epochs"))]
    result = multirun(
        sweep_dir,
        "-cd",
        "sweeps",
        "-cn",
        "reference_table",
        *ON_SLURM,
        "epoch_scale=0.01",
        "model=unet",
        "data=synthetic",
        *tiny,
        env=slurm_cluster.env,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:] + submitit_logs(sweep_dir)[-3000:]
    rows = report_rows(sweep_dir)
    assert len(rows) == 9 and all(row["status"] == "completed" for row in rows)
    ids = [ARRAY_ID.fullmatch(row["Job id"]) for row in rows]
    assert all(ids) and len({m[1] for m in ids}) == 1 and [int(m[2]) for m in ids] == list(range(9))
    for (job, (epochs, batch, lr)), row, run_dir in zip(REFERENCE_RUNS.items(), rows, run_dirs(sweep_dir)):
        metrics = read_metrics(run_dir)
        assert metrics["job_id"] == row["Job id"] and metrics["slurm_job_id"].isdigit()
        assert metrics["config"]["reference_job_id"] == job
        assert (row["batch_size"], row["learning_rate"]) == (batch, lr)
        assert metrics["config"]["requested_epochs"] == epochs
        assert row["epochs"] == max(1, round(epochs * 0.01))
    assert sorted({read_metrics(d)["slurm_node"] for d in run_dirs(sweep_dir)}) == slurm_cluster.nodes


def test_failing_run_never_loses_the_others(slurm_cluster, tmp_path):
    """One point asks for 2 devices while the array runs 1 task per node (tasks_per_node follows the
    sweep's trainer.devices, not a swept one): that run fails fast, the other completes, and the sweep exits with
    the failed run's code, 2 for a config the job cannot run (retina_seg/exit_codes.py)."""
    sweep_dir = tmp_path / "sweep"
    result = multirun(
        sweep_dir, *SWEEP_RUN, *ON_SLURM, "trainer.accelerator=cpu", "trainer.devices=1,2", env=slurm_cluster.env
    )
    assert result.returncode == EXIT_BAD_INPUT
    rows = report_rows(sweep_dir)
    assert [row["status"] for row in rows] == ["completed", "failed"]
    assert isinstance(rows[0]["test_IoU"], float) and rows[1]["test_IoU"] is None and rows[1]["val_IoU"] is None
    failed = read_metrics(run_dirs(sweep_dir)[1])
    assert failed["status"] == "failed"
    assert "trainer.devices=2 but SLURM runs 1 task(s) per node" in failed["error"]


def test_usr2_requeues_and_the_run_resumes_from_last_checkpoint(slurm_cluster, tmp_path):
    """submitit's USR2 handler requeues the job (Lightning's USR1 auto-requeue is off); the run continues
    from its last.ckpt in the same folder and ends with every epoch and a complete metrics.json.

    The signal goes to the job's steps (``scancel --signal=USR2 JOB``), where SLURM also delivers the
    time-limit warning (``--signal=USR2@120``). ``--batch`` would reach only the batch shell, which does
    not trap USR2 and dies, failing the job instead. With a 5-minute limit submitit counts the signal as
    a timeout, so this also proves ``max_num_timeout > 0`` (the plugin's default 0 would not requeue).
    """
    sweep_dir, epochs = tmp_path / "sweep", 12
    run_dir = sweep_dir / "0"
    job, done_when_signalled = preempt_once(
        slurm_cluster, sweep_dir, tmp_path / "launcher.log", f"trainer.max_epochs={epochs}"
    )
    logs = submitit_logs(sweep_dir)
    assert "Caught signal SIGUSR2" in logs and f"Requeued job {job}" in logs
    assert "SLURM auto-requeueing enabled" not in logs
    metrics = read_metrics(run_dir)
    resumed = metrics["resumed_from_epoch"]
    assert done_when_signalled - 1 <= resumed < epochs  # at most the epoch in progress is lost
    assert (
        f"Resuming from checkpoint {run_dir / 'checkpoints' / 'last.ckpt'}: {resumed} epoch(s) done, "
        f"continuing at epoch {resumed}"
    ) in (run_dir / "train.log").read_text()
    assert metrics["status"] == "completed" and metrics["epochs"] == epochs and metrics["job_id"] == job
    assert all(isinstance(metrics[k], float) for k in ("val_IoU", "val_loss", "test_IoU", "test_loss"))
    assert [row["epoch"] for row in read_epoch_table(run_dir)] == list(range(epochs))
    assert "REQUEUED" in run(slurm_cluster, "sacct", "-D", "-X", "-n", "-j", job, "-o", "State")


def test_ddp_runs_one_slurm_task_per_device(slurm_cluster, tmp_path):
    """trainer=ddp with 2 CPU devices: the array asks for 2 tasks per node, each is a rank (gloo), and the
    synchronised val_IoU equals a single-process evaluation of the same checkpoint (2 val images: no
    padding by the distributed sampler)."""
    sweep_dir = tmp_path / "sweep"
    result = multirun(sweep_dir, *SWEEP_RUN, *ON_SLURM, "trainer=ddp", "trainer.accelerator=cpu", env=slurm_cluster.env)
    assert result.returncode == 0, result.stderr[-3000:] + submitit_logs(sweep_dir)[-3000:]
    script = next((sweep_dir / ".submitit").rglob("*_submission.sh")).read_text()
    assert "#SBATCH --ntasks-per-node=2" in script
    logs = submitit_logs(sweep_dir)
    assert "MEMBER: 1/2" in logs and "MEMBER: 2/2" in logs
    run_dir = run_dirs(sweep_dir)[0]
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "completed" and metrics["config"]["trainer"]["devices"] == 2
    single = evaluate_in_process(run_dir / "checkpoints" / "best.ckpt", tmp_path / "single")
    assert metrics["val_IoU"] == pytest.approx(single["val_IoU"], abs=1e-6)
