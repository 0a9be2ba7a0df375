"""A run's record survives kills, damaged checkpoints and a second writer: real processes, real signals.

The kill test stages temporary files on another filesystem than the run folder (TMPDIR on /dev/shm), the
usual SLURM set-up where a writer that stages in TMPDIR ends with a copy, not a rename.
"""

import fractions
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from retina_seg.records.checkpoint import CheckpointError, epochs_done, read_checkpoint, resume_point
from retina_seg.records.run_folder import read_epoch_table, read_metrics
from retina_seg.reporting.runs import read_run
from retina_seg.training.pipeline import train
from retina_seg.utils.folder_lock import LOCK_FILE
from tests.helpers.environment import require
from tests.helpers.runs import TINY_RUN, compose, folder_held_by_another_process, run_cli

QUIET = ["logger=none", "trainer.enable_progress_bar=false"]
# Wide enough (base width 32: a 23 MB checkpoint) that polling catches a checkpoint write in progress.
KILL_RUN = [*TINY_RUN, *QUIET, "trainer.max_epochs=6", "model.base_width=32"]


def start(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """``python -m retina_seg.train ARGS`` in the background, its output into ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "retina_seg.train", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )


def poll(condition, process: subprocess.Popen, timeout: float = 300) -> bool:
    """True as soon as ``condition()`` holds; False when the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.0005)
    return False


def partial_last_checkpoints(run_dir: Path) -> list[Path]:
    return list((run_dir / "checkpoints").glob(".last.ckpt.*.tmp"))


@pytest.fixture
def scratch_tmpdir(tmp_path):
    """A TMPDIR on another filesystem than the run folder."""
    shm = Path("/dev/shm")
    require(shm.is_dir() and shm.stat().st_dev != tmp_path.stat().st_dev, "no /dev/shm on its own filesystem")
    scratch = shm / f"retina-seg-test-{os.getpid()}-{tmp_path.name}"
    scratch.mkdir()
    yield scratch
    for path in scratch.rglob("*"):
        path.unlink() if path.is_file() else None
    scratch.rmdir() if not any(scratch.iterdir()) else None


@pytest.mark.slow
def test_kill_during_checkpoint_write_keeps_the_resume_point_and_the_record(tmp_path, scratch_tmpdir):
    run_dir = tmp_path / "run"
    args = [*KILL_RUN, f"hydra.run.dir={run_dir}"]
    env = {"TMPDIR": str(scratch_tmpdir)}
    last = run_dir / "checkpoints" / "last.ckpt"
    first = start(args, tmp_path / "first.log", env)
    assert poll(last.exists, first), (tmp_path / "first.log").read_text()[-2000:]
    written = last.stat().st_mtime_ns
    # The next write of last.ckpt has begun: a file staged beside it, or (a writer without rename) it changes.
    caught = poll(lambda: partial_last_checkpoints(run_dir) or last.stat().st_mtime_ns != written, first)
    first.kill()  # SIGKILL: no handler, no cleanup
    first.wait()
    assert caught, "never saw last.ckpt being rewritten: " + (tmp_path / "first.log").read_text()[-2000:]

    done = epochs_done(last)  # the previous resume point is intact
    assert partial_last_checkpoints(run_dir), "the kill did not hit a checkpoint write"
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "running" and metrics["pid"] == first.pid
    assert 1 <= metrics["epochs_done"] == done  # never ahead of the checkpoint a resume continues from
    assert read_run(run_dir).status == "stale"
    lock = json.loads((run_dir / LOCK_FILE).read_text())
    assert lock["pid"] == first.pid  # left behind by the killed process
    earlier_wall_time = torch.load(last, weights_only=True)["callbacks"]["RunFolderWriter"]["wall_time_s"]

    second = subprocess.run(
        [sys.executable, "-m", "retina_seg.train", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    assert f"Resuming from checkpoint {last}: {done} epoch(s) done" in output
    assert f"taking over the lock of job {first.pid} (pid {first.pid}" in output
    final = read_metrics(run_dir)
    assert final["status"] == "completed" and final["job_id"] == str(first.pid)  # its own id, not the new pid
    assert final["epochs_done"] == 6 and final["resumed_from_epoch"] == done
    assert final["wall_time_s"] > earlier_wall_time > 0  # both processes' training time
    assert [row["epoch"] for row in read_epoch_table(run_dir)] == list(range(6))
    assert not partial_last_checkpoints(run_dir) and not (run_dir / LOCK_FILE).exists()


@pytest.mark.slow
def test_a_damaged_last_checkpoint_is_named_and_the_run_resumes_from_the_newest_readable(tmp_path, caplog):
    train(compose(TINY_RUN, tmp_path), tmp_path, "0")
    last, best = tmp_path / "checkpoints" / "last.ckpt", tmp_path / "checkpoints" / "best.ckpt"
    best_epochs = epochs_done(best)
    last.write_bytes(b"")  # what a kill during a non-atomic write leaves
    record = train(compose([*TINY_RUN, "trainer.max_epochs=3"], tmp_path), tmp_path, "0")
    assert (
        f"Cannot resume from {last}: checkpoint {last}: corrupt or not a PyTorch checkpoint (an empty file"
        in caplog.text
    )
    assert f"Resuming from {best}, the newest readable checkpoint ({best_epochs} epoch(s) done): {last} is damaged" in (
        caplog.text
    )
    assert record["status"] == "completed" and record["resumed_from_epoch"] == best_epochs
    assert epochs_done(last) == 3


def fake_checkpoint(path: Path, epochs: int) -> Path:
    """A file as Lightning would leave it, reduced to what choosing a resume point reads: its epochs done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"loops": {"fit_loop": {"epoch_progress": {"current": {"processed": epochs}}}}}, path)
    return path


@pytest.mark.parametrize(
    ("last_epochs", "best_epochs", "chosen", "level", "reason"),
    [
        (3, 2, "last.ckpt", None, None),  # the usual case: no line beyond the pipeline's own
        (3, 3, "last.ckpt", None, None),  # a tie goes to last.ckpt
        (2, 3, "best.ckpt", "INFO", "{last} is older (2 epoch(s) done)"),  # killed between the two writes
        ("damaged", 2, "best.ckpt", "WARNING", "{last} is damaged"),
        (None, 2, "best.ckpt", "WARNING", "there is no {last}"),
    ],
)
def test_the_resume_point_says_why_it_is_not_last_ckpt(
    tmp_path, caplog, last_epochs, best_epochs, chosen, level, reason
):
    folder = tmp_path / "checkpoints"
    last = folder / "last.ckpt"
    fake_checkpoint(folder / "best.ckpt", best_epochs)
    if last_epochs == "damaged":
        folder.joinpath("last.ckpt").write_bytes(b"PK\x03\x04 cut short")
    elif last_epochs is not None:
        fake_checkpoint(last, last_epochs)
    caplog.set_level("INFO", logger="retina_seg.records.checkpoint")
    path, done = resume_point(folder)
    assert path == folder / chosen and done == epochs_done(path)
    choices = [r for r in caplog.records if r.getMessage().startswith("Resuming from")]
    if reason is None:
        assert choices == []
    else:
        (choice,) = choices
        expected = f"Resuming from {path}, the newest readable checkpoint ({done} epoch(s) done): "
        assert choice.levelname == level and choice.getMessage() == expected + reason.format(last=last)
        assert "damaged or missing" not in caplog.text


def test_checkpoint_refusals_say_what_the_file_is(tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(garbage)
    assert str(error.value).startswith(f"checkpoint {garbage}: corrupt or not a PyTorch checkpoint (not a torch.save")
    smuggled = tmp_path / "smuggled.ckpt"
    torch.save({"state_dict": {}, "extra": fractions.Fraction(1, 3)}, smuggled)
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(smuggled)
    message = str(error.value)
    assert "refused, it holds pickled objects" in message and "fractions.Fraction" in message
    assert "\x1b" not in message and "weights_only=False" not in message


def _finish(processes: list[subprocess.Popen], logs: list[Path]) -> list[tuple[int, str]]:
    return [(process.wait(timeout=600), log.read_text()) for process, log in zip(processes, logs)]


@pytest.mark.slow
def test_two_runs_in_one_folder_one_trains_the_other_exits_at_once(tmp_path):
    run_dir = tmp_path / "run"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [
        start([*TINY_RUN, *QUIET, f"seed={seed}", f"hydra.run.dir={run_dir}"], log) for seed, log in zip((1, 2), logs)
    ]
    (winner_rc, winner_log), (loser_rc, loser_log) = sorted(_finish(processes, logs), key=lambda r: r[0])
    assert (winner_rc, loser_rc) == (0, 1), winner_log[-2000:] + loser_log[-2000:]
    assert f"{run_dir.resolve()} is in use by job" in loser_log and "Traceback" not in loser_log
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "completed" and [r["epoch"] for r in read_epoch_table(run_dir)] == [0, 1]
    winner_seed = metrics["seed"]
    assert f"seed: {winner_seed}" in (run_dir / ".hydra" / "config.yaml").read_text()  # the loser changed nothing
    assert f"seed={winner_seed}" in (run_dir / ".hydra" / "overrides.yaml").read_text()


@pytest.mark.slow
def test_two_sweeps_in_one_folder_train_each_job_once(tmp_path):
    sweep_dir = tmp_path / "sweep"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    args = ["-m", *TINY_RUN, *QUIET, "trainer.max_epochs=1", "optimizer.lr=1e-3", f"hydra.sweep.dir={sweep_dir}"]
    processes = [start(args, log) for log in logs]
    (winner_rc, winner_log), (loser_rc, loser_log) = sorted(_finish(processes, logs), key=lambda r: r[0])
    assert (winner_rc, loser_rc) == (0, 1), winner_log[-2000:] + loser_log[-2000:]
    assert f"{sweep_dir.resolve()} is in use by job" in loser_log and "finished" not in loser_log
    assert read_metrics(sweep_dir / "0")["status"] == "completed"
    assert [r["epoch"] for r in read_epoch_table(sweep_dir / "0")] == [0]
    assert (sweep_dir / "multirun.yaml").exists() and not (sweep_dir / "1").exists()


@pytest.mark.slow
def test_a_live_lock_refuses_and_a_dead_processes_lock_is_taken_over(tmp_path):
    with folder_held_by_another_process(tmp_path, "x") as holder:
        refused = run_cli("retina_seg.train", *TINY_RUN, *QUIET, f"hydra.run.dir={tmp_path}")
        assert refused.returncode == 1
        assert f"in use by job x (pid {holder} on " in refused.stderr
        assert not (tmp_path / ".hydra").exists() and not (tmp_path / "metrics.json").exists()
    record = train(compose(TINY_RUN, tmp_path), tmp_path, "0")
    assert record["status"] == "completed"
