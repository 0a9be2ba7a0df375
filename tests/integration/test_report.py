"""`retina-seg-report` on a real two-job Hydra sweep: the table, its three formats, plots, and broken runs."""

import csv
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from retina_seg.records.run_folder import read_metrics, write_metrics
from retina_seg.reporting.table import COLUMNS
from tests.helpers.environment import require
from tests.helpers.runs import TINY_RUN, run_main
from tests.helpers.sweeps import job_table_lines

SCORES = ("val_IoU", "val_loss", "test_IoU", "test_loss")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real multirun of two one-epoch jobs (lr 1e-3 and 1e-4), run once for the module; never modified."""
    sweep_dir = tmp_path_factory.mktemp("sweep")
    result = run_main(
        "retina_seg.train",
        "-m",
        *TINY_RUN,
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "optimizer.lr=1e-3,1e-4",
        f"hydra.sweep.dir={sweep_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir


@pytest.fixture(scope="module")
def report(sweep):
    """The report of the untouched sweep, written to its default place (the sweep folder)."""
    result = run_main("retina_seg.report", str(sweep))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture
def sweep_copy(sweep, tmp_path) -> Path:
    """A copy of the sweep (without checkpoints) that a test may break."""
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns("checkpoints", "report.*", "*.png"))
    return copy


def table_rows(markdown: str) -> list[list[str]]:
    """Cells of the job-id table, after the group table (header first, separator dropped)."""
    lines = job_table_lines(markdown)
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for i, line in enumerate(lines) if i != 1]


def edit_metrics(run_dir: Path, **changes) -> None:
    metrics = read_metrics(run_dir)
    (run_dir / "metrics.json").write_text(json.dumps({**metrics, **changes}))


def test_table_has_the_eight_columns_and_each_runs_values(sweep, report):
    rows = table_rows((sweep / "report.md").read_text())
    assert rows[0] == list(COLUMNS)
    assert [row[0] for row in rows[1:]] == ["0", "1"]
    for row in rows[1:]:
        metrics = read_metrics(sweep / row[0])
        assert row[1:4] == ["1", "2", {1e-3: "0.001", 1e-4: "0.0001"}[metrics["learning_rate"]]]
        assert row[4:] == [f"{metrics[key]:.4f}" for key in SCORES]
    assert table_rows(report.stdout) == rows
    assert "Problems" not in report.stdout


def test_csv_and_json_agree_with_the_markdown(sweep, report):
    rows = table_rows((sweep / "report.md").read_text())
    with (sweep / "report.csv").open() as handle:
        assert list(csv.reader(handle)) == rows
    saved = json.loads((sweep / "report.json").read_text())
    assert saved["columns"] == list(COLUMNS) and saved["problems"] == []
    for row, record in zip(rows[1:], saved["rows"], strict=True):
        assert list(record) == [*COLUMNS, "status"] and record["status"] == "completed"
        assert record["Job id"] == row[0]
        assert [record[key] for key in COLUMNS[1:]] == [int(row[1]), int(row[2]), *map(float, row[3:])]


def test_both_plots_are_png_images(sweep, report):
    for name in ("val_iou_curves.png", "final_iou.png"):
        with Image.open(sweep / name) as image:
            assert image.format == "PNG" and image.size[0] >= 600
            image.verify()


def test_corrupt_metrics_json_is_reported_and_the_other_run_still_tabulated(sweep_copy, tmp_path):
    broken = sweep_copy / "1" / "metrics.json"
    broken.write_text(broken.read_text()[:200])
    out = tmp_path / "out"
    result = run_main("retina_seg.report", str(sweep_copy), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = table_rows(result.stdout)
    assert rows[1][0] == "0" and rows[1][4] == f"{read_metrics(sweep_copy / '0')['val_IoU']:.4f}"
    assert rows[2] == ["1 (corrupt)"] + ["-"] * 7
    assert f"{broken}: corrupt metrics.json: not valid JSON" in result.stdout
    assert json.loads((out / "report.json").read_text())["problems"][0].startswith(f"{broken}: corrupt")
    assert (out / "final_iou.png").exists() and not (sweep_copy / "report.md").exists()


def test_running_failed_and_pending_runs_are_marked_with_dashes(sweep_copy, tmp_path):
    edit_metrics(sweep_copy / "0", status="running")
    edit_metrics(sweep_copy / "1", status="failed")
    (sweep_copy / "7" / ".hydra").mkdir(parents=True)  # a job that has not begun training
    result = run_main("retina_seg.report", str(tmp_path))  # the sweep is nested one level down
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row[0]: row[1:] for row in table_rows((tmp_path / "report.md").read_text())[1:]}
    assert list(rows) == ["0 (running)", "1 (failed)", "7 (pending)"]
    running = read_metrics(sweep_copy / "0")
    assert rows["0 (running)"] == [
        "1",
        "2",
        "0.001",
        f"{running['val_IoU']:.4f}",
        f"{running['val_loss']:.4f}",
        "-",
        "-",
    ]
    assert rows["1 (failed)"] == ["1", "2", "0.0001", "-", "-", "-", "-"]
    assert rows["7 (pending)"] == ["-"] * 7
    statuses = [row["status"] for row in json.loads((tmp_path / "report.json").read_text())["rows"]]
    assert statuses == ["running", "failed", "pending"]


def test_stale_and_failed_runs_say_why_and_offer_to_resume_only_from_a_checkpoint(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = {"status": "running", "host": socket.gethostname(), "pid": dead.pid, "heartbeat": "2026-01-01T00:00:00"}
    records = {
        "killed_early": gone,
        "killed_later": gone,
        "failed_early": {"status": "failed", "error": "DiskFullError: no space left on device writing x"},
        "failed_later": {"status": "failed", "error": "RuntimeError: boom"},
    }
    for name, record in records.items():
        write_metrics(tmp_path / name, {"job_id": name, **record})
        if name.endswith("later"):
            (tmp_path / name / "checkpoints").mkdir()
            (tmp_path / name / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    result = run_main("retina_seg.report", str(tmp_path), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr[-3000:]
    listed = json.loads((tmp_path / "report" / "report.json").read_text())["problems"]
    problems = {Path(problem.split(": ", 1)[0]).parent.name: problem for problem in listed}
    resumes = "rerun the same command to resume it from its last checkpoint"
    starts_over = "it wrote no checkpoint, so rerunning the same command starts it from the beginning"
    assert problems["killed_early"].endswith(f"is gone; {starts_over}")
    assert problems["killed_later"].endswith(f"is gone; {resumes}")
    assert problems["failed_early"] == (
        f"{tmp_path / 'failed_early' / 'metrics.json'}: failed: DiskFullError: no space left on device writing x; "
        f"{starts_over}"
    )
    assert problems["failed_later"].endswith(f"failed: RuntimeError: boom; {resumes}")


def test_paths_without_runs_are_bad_input(tmp_path):
    script = shutil.which("retina-seg-report")
    require(script is not None, "retina-seg-report is not installed (pip install -e .)")
    empty = run_main("retina_seg.report", str(tmp_path))
    assert empty.returncode == 2 and "no run folder" in empty.stderr and str(tmp_path) in empty.stderr
    missing = subprocess.run([script, str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and f"{tmp_path / 'nope'}: no such folder" in missing.stderr
    assert not (tmp_path / "report.md").exists()


@pytest.mark.slow
def test_a_reader_that_stops_early_ends_the_report_quietly(tmp_path):
    """`retina-seg-report SWEEP | head`: the pipe is closed before the table is printed (a real pipe, its
    reading end closed at once); the report files are written, and no BrokenPipeError traceback follows."""
    (tmp_path / "sweep" / "0" / ".hydra").mkdir(parents=True)  # a run that has not begun: the table has a row
    report = subprocess.Popen(
        [sys.executable, "-m", "retina_seg.report", str(tmp_path / "sweep")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    report.stdout.close()
    stderr = report.stderr.read()
    assert report.wait(timeout=300) == 0, stderr
    assert stderr == "" and (tmp_path / "sweep" / "report.md").exists()
    piped = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m retina_seg.report {tmp_path / 'sweep'} | head -1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert piped.stdout.startswith("|") and piped.stderr == "", piped.stderr
