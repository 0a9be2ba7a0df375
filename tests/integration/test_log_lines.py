"""What a training run prints: each log line once, in the console and in the run's log file, as a real process
(Lightning's package logger has a console handler of its own; Hydra configures the root logger's)."""

import pytest

from tests.helpers.runs import TINY_NET, run_cli

LIGHTNING_LINE = "GPU available: "


@pytest.mark.slow
def test_each_lightning_line_is_printed_once_in_the_console_and_in_the_log_file(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "retina_seg.train", *TINY_NET, "trainer.max_epochs=1", "logger=none", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    assert console.count(LIGHTNING_LINE) == 1, console[-3000:]
    assert "INFO: " + LIGHTNING_LINE not in console  # Hydra's format, not Lightning's own
    log_file = (run_dir / "train.log").read_text()
    assert log_file.count(LIGHTNING_LINE) == 1, log_file[-3000:]
    # Our own lines are printed once too.
    assert console.count(" finished: val_IoU=") == log_file.count(" finished: val_IoU=") == 1
