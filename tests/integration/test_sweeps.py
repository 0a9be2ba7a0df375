"""Real Hydra multiruns on tiny synthetic data: the basic and submitit_local launchers, the job-id table,
sweep resumption, and DDP on CPU (gloo) against a single-process evaluation of the same checkpoint."""

import json
import re

import pytest

from retina_seg.records.run_folder import read_epoch_table, read_metrics
from tests.helpers.runs import run_cli
from tests.helpers.sweeps import (
    SWEEP_RUN,
    TINY_DATA,
    assert_completed_rows,
    evaluate_in_process,
    file_mtimes,
    file_states,
    multirun,
    report_rows,
    run_dirs,
)


@pytest.fixture(scope="module")
def basic_sweep(tmp_path_factory):
    """A 2-run grid through the basic launcher and its table, taken before any test changes the folder."""
    sweep_dir = tmp_path_factory.mktemp("basic") / "sweep"
    result = multirun(sweep_dir, *SWEEP_RUN, "optimizer.lr=1e-3,1e-4")
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir, report_rows(sweep_dir)


def test_basic_launcher_grid_gives_table_keyed_by_job_number(basic_sweep):
    sweep_dir, rows = basic_sweep
    assert [row["Job id"] for row in rows] == ["0", "1"]
    assert_completed_rows(rows, [1e-3, 1e-4])
    assert [read_metrics(d)["learning_rate"] for d in run_dirs(sweep_dir)] == [1e-3, 1e-4]


def test_resume_reruns_failed_and_missing_runs_only(basic_sweep):
    """skip_completed=true: run 1 (completed) is not touched at all; run 0 (failed) reruns in its folder."""
    sweep_dir, _ = basic_sweep
    failed, done = run_dirs(sweep_dir)
    record = read_metrics(failed)
    (failed / "metrics.json").write_text(json.dumps({**record, "status": "failed"}))
    before = file_mtimes(done)
    result = multirun(sweep_dir, *SWEEP_RUN, "optimizer.lr=1e-3,1e-4", "skip_completed=true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"skip_completed: job #1 already completed in {done}" in result.stdout + result.stderr
    assert file_mtimes(done) == before
    rerun = read_metrics(failed)
    assert (rerun["status"], rerun["job_id"], rerun["resumed_from_epoch"]) == ("completed", "0", 1)
    assert [r["epoch"] for r in read_epoch_table(failed)] == [0]
    assert [d.name for d in run_dirs(sweep_dir)] == ["0", "1"]

    everything = [file_mtimes(d) for d in run_dirs(sweep_dir)]  # all completed: a third call launches nothing
    again = multirun(sweep_dir, *SWEEP_RUN, "optimizer.lr=1e-3,1e-4", "skip_completed=true")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "skip_completed: 0 of 2 run(s) to launch" in again.stdout + again.stderr
    assert [file_mtimes(d) for d in run_dirs(sweep_dir)] == everything


def test_resume_with_other_values_is_refused_naming_folders_and_keys(basic_sweep):
    """The same sweep folder with new values: nothing is skipped (old results would answer the new command)
    and nothing resumed (a checkpoint of other values); the refusal names each folder and what differs and
    changes no file of the sweep folder (its multirun.yaml keeps the first sweep's values)."""
    sweep_dir, _ = basic_sweep
    first, second = run_dirs(sweep_dir)
    before = file_states(sweep_dir)
    result = multirun(sweep_dir, *SWEEP_RUN, "optimizer.lr=0.05,1e-4", "trainer.max_epochs=3", "skip_completed=true")
    output = result.stdout + result.stderr
    assert result.returncode == 2  # bad input: this folder holds another sweep's runs
    assert f"{first} (job #0): optimizer.lr: 0.001 -> 0.05, trainer.max_epochs: 1 -> 3" in output, output[-2000:]
    assert f"{second} (job #1): trainer.max_epochs: 1 -> 3" in output
    assert "already completed" not in output
    after = file_states(sweep_dir)
    assert {name for name in after if after[name] != before.get(name)} == set()
    assert set(after) == set(before)


@pytest.mark.slow
def test_submitit_local_runs_in_parallel_processes_keyed_by_pid(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = multirun(sweep_dir, *SWEEP_RUN, "optimizer.lr=1e-3,1e-4", "hydra/launcher=local")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = report_rows(sweep_dir)
    assert_completed_rows(rows, [1e-3, 1e-4])
    ids = [row["Job id"] for row in rows]
    assert all(re.fullmatch(r"\d+", i) for i in ids) and len(set(ids)) == 2
    # submitit_local names each job's folder after the process id that ran it.
    assert set(ids) == {p.name for p in (sweep_dir / ".submitit").iterdir() if p.name.isdigit()}
    for run_dir in run_dirs(sweep_dir):  # each run keeps to its cpus_per_task=1
        assert "1 torch thread(s) (hydra.launcher.cpus_per_task)" in (run_dir / "train.log").read_text()


@pytest.mark.slow
def test_local_ddp_two_processes_match_single_process_evaluation(tiny_checkpoint, tmp_path):
    """trainer=ddp on CPU: Lightning starts 2 processes (gloo); val has 2 images, so nothing is padded."""
    single = evaluate_in_process(tiny_checkpoint, tmp_path / "single")
    result = run_cli(  # a process of its own: Lightning starts the second by running the command line again
        "retina_seg.eval",
        f"ckpt_path={tiny_checkpoint}",
        "split=val",
        *TINY_DATA,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={tmp_path / 'ddp'}",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "MEMBER: 1/2" in log and "MEMBER: 2/2" in log
    ddp = read_metrics(tmp_path / "ddp")
    assert ddp["config"]["trainer"]["devices"] == 2
    assert ddp["val_IoU"] == pytest.approx(single["val_IoU"], abs=1e-6)
    assert ddp["val_loss"] == pytest.approx(single["val_loss"], abs=1e-6)
