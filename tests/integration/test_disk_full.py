"""A full disk on a real small filesystem (a tmpfs the test mounts, as root): the run says so in one line, its
metrics.json records the failure, and the report says why and what a rerun does."""

import errno
import os
import subprocess
from pathlib import Path

import pytest

from retina_seg.records.run_folder import (
    SPACE_RESERVE,
    read_metrics,
    reserve_record_space,
    write_final_metrics,
    write_metrics,
)
from retina_seg.utils.disk_space import DiskFullError
from tests.helpers.environment import require
from tests.helpers.runs import TINY_RUN, run_main

# The config, .hydra/, epochs.csv, progress.png, the logs and the reserve take about 0.3 MiB; a TINY_RUN
# checkpoint is 5.7 MiB (measured): the run starts, trains its first epoch, and its first checkpoint does not fit.
FILESYSTEM_SIZE = "3m"


@pytest.fixture
def small_filesystem(tmp_path) -> Path:
    """A 3 MiB tmpfs mounted for the test and unmounted after it."""
    require(os.geteuid() == 0, "mounting a small filesystem needs root")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FILESYSTEM_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    require(mounted.returncode == 0, f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def fill(folder: Path) -> None:
    """Take every free byte of ``folder``'s filesystem, as another writer would."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (b"x" * 65536, b"x" * 4096, b"x"):
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bavail == 0


def test_the_reserve_makes_room_for_the_last_record_once_the_disk_is_full(small_filesystem):
    run_dir = small_filesystem / "run"
    run_dir.mkdir()
    write_metrics(run_dir, {"job_id": "7", "status": "running"})
    reserve_record_space(run_dir)
    fill(small_filesystem)
    with pytest.raises(DiskFullError, match=f"writing {run_dir / 'metrics.json'} .*filesystem {small_filesystem}: 0 B"):
        write_metrics(run_dir, {"job_id": "7", "status": "failed", "error": "x"})
    assert read_metrics(run_dir)["status"] == "running"  # the failed write left the previous record whole
    assert sorted(p.name for p in run_dir.iterdir()) == [SPACE_RESERVE, "metrics.json"]  # no partial file

    write_final_metrics(run_dir, {"job_id": "7", "status": "failed", "error": "DiskFullError: x"})
    assert read_metrics(run_dir)["status"] == "failed" and not (run_dir / SPACE_RESERVE).exists()


@pytest.mark.slow
def test_a_run_that_fills_the_disk_says_where_in_one_line_and_records_it(small_filesystem, tmp_path):
    run_dir = small_filesystem / "run"
    result = run_main("retina_seg.train", *TINY_RUN, "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if "no space left" in line]
    assert len(lines) == 1, result.stderr[-3000:]
    checkpoints = run_dir / "checkpoints"
    assert lines[0].startswith(f"retina-seg-train: error: no space left on device writing {checkpoints}/")
    assert f"(filesystem {small_filesystem}: " in lines[0] and "free of 3.0 MiB)" in lines[0]

    metrics = read_metrics(run_dir)
    assert metrics["status"] == "failed"
    assert metrics["error"] == "DiskFullError: " + lines[0].removeprefix("retina-seg-train: error: ")
    assert not any(checkpoints.iterdir())  # no partial checkpoint left, none complete
    assert not (run_dir / SPACE_RESERVE).exists()

    report = run_main("retina_seg.report", str(run_dir), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert f"{run_dir / 'metrics.json'}: failed: {metrics['error']}; " in report.stdout
    assert "it wrote no checkpoint, so rerunning the same command starts it from the beginning" in report.stdout
    assert "resume" not in report.stdout
