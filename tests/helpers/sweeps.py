"""Sweeps as a user runs them (``retina-seg-train -m``, ``retina-seg-report``) and what their folders hold, for
the sweep tests on the local launchers (tests/integration) and on the real cluster (tests/slurm)."""

import json
from pathlib import Path

from retina_seg.evaluation.checkpoint_eval import evaluate
from tests.helpers.environment import REPO_ROOT
from tests.helpers.runs import TINY_RUN, compose, run_main

# A run of a few seconds: TINY_RUN's data, one epoch, no logger, no progress bar.
SWEEP_RUN = [*TINY_RUN, "trainer.max_epochs=1", "logger=none", "trainer.enable_progress_bar=false"]
TINY_DATA = [o for o in TINY_RUN if o.startswith("data.source.")]
# The sweep files (sweeps/*.yaml), composed with -cd sweeps.
SWEEPS_DIR = REPO_ROOT / "sweeps"
TABLE_COLUMNS = ["Job id", "epochs", "batch_size", "learning_rate", "val_IoU", "val_loss", "test_IoU", "test_loss"]

# The reference's nine runs: job id -> (epochs, batch_size, learning_rate).
REFERENCE_RUNS = {
    17855: (100, 4, 1e-4),
    17857: (100, 16, 1e-4),
    17931: (200, 4, 1e-4),
    17932: (200, 4, 5e-5),
    17939: (200, 4, 1e-4),
    17941: (300, 4, 1e-4),
    17942: (300, 4, 5e-5),
    18049: (400, 4, 1e-4),
    18808: (1000, 4, 1e-4),
}


def multirun(sweep_dir: Path, *overrides: str, env: dict | None = None, timeout: int = 600, cwd: Path | None = None):
    """``retina-seg-train -m`` as a user runs it; the sweep folder is pinned."""
    return run_main(
        "retina_seg.train", "-m", *overrides, f"hydra.sweep.dir={sweep_dir}", env=env, timeout=timeout, cwd=cwd
    )


def report_rows(sweep_dir: Path) -> list[dict]:
    """The rows of ``retina-seg-report SWEEP_DIR`` (report.json, written into the sweep folder)."""
    result = run_main("retina_seg.report", str(sweep_dir))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    header = job_table_lines(result.stdout)[0]
    assert [cell.strip() for cell in header.strip("|").split("|")][: len(TABLE_COLUMNS)] == TABLE_COLUMNS
    return json.loads((sweep_dir / "report.json").read_text())["rows"]


def job_table_lines(markdown: str) -> list[str]:
    """The lines of the job-id table in a report (it follows the group table), header first."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Job id "))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def run_dirs(sweep_dir: Path) -> list[Path]:
    """Run folders of a sweep (Hydra's numbered sub-folders), in job-number order."""
    return sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def file_mtimes(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` (hidden ones included) with its modification time in ns."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def file_states(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder`` (hidden ones included) with its modification time in ns and its bytes."""
    return {name: (mtime, (folder / name).read_bytes()) for name, mtime in file_mtimes(folder).items()}


def assert_completed_rows(rows: list[dict], learning_rates: list[float]) -> None:
    """Every row is a completed one-epoch SWEEP_RUN with its four scores, one row per learning rate."""
    assert [row["status"] for row in rows] == ["completed"] * len(learning_rates)
    assert sorted(row["learning_rate"] for row in rows) == sorted(learning_rates)
    for row in rows:
        assert (row["epochs"], row["batch_size"]) == (1, 2)
        assert all(isinstance(row[key], float) for key in ("val_IoU", "val_loss", "test_IoU", "test_loss")), row


def evaluate_in_process(ckpt: Path, out: Path) -> dict:
    """Single-process evaluation of ``ckpt`` on the val split, through the real eval config."""
    cfg = compose(
        [f"ckpt_path={ckpt}", "split=val", *TINY_DATA, "trainer.enable_progress_bar=false"], out, config_name="eval"
    )
    return evaluate(cfg, out)
