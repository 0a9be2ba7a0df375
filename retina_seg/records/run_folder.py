"""The run folder contract (docs/run-folder.md): the files a run leaves, its statuses, and metrics.json read and
written one way for every package that looks at a run."""

import csv
import io
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..utils.atomic import write_json_atomic, write_text_atomic
from ..utils.disk_space import set_space_aside

METRICS_JSON = "metrics.json"
EPOCHS_CSV = "epochs.csv"
# The per-epoch table's name before it became epochs.csv; still read, for one release, from older run folders.
LEGACY_EPOCHS_CSV = "metrics.csv"
PROGRESS_PNG = "progress.png"
CHECKPOINTS = "checkpoints"
# Each test image's own scores under each protocol the run measured: one row per image and protocol.
TEST_IMAGES_CSV = "test_images.csv"
TEST_IMAGES_COLUMNS = ("image", "protocol", "IoU", "Dice", "clDice")
LAST_CKPT = "last.ckpt"
# The checkpoint of the best validation epoch, with the threshold chosen after training (checkpoint.py).
BEST_CKPT = "best.ckpt"
SPACE_RESERVE = ".space-reserve"
# Far more than any metrics.json (about 5 KiB with its whole config): room for the last record, twice over (an
# atomic rewrite holds the old file and the new one at once), and for the log lines around it.
RESERVE_BYTES = 256 * 1024
# Lightning's step-level CSV log: STEP_LOGS/metrics.csv for a run's first process, then one folder per process
# that resumed it (STEP_LOGS/attempt-2/metrics.csv, ...), so a resume never replaces an earlier one's log.
STEP_LOGS = "logs"
STEP_LOG_CSV = "metrics.csv"


def step_log_folder(run_dir: Path) -> str:
    """The folder under STEP_LOGS (a CSV logger's ``version``) for the step log of a process starting in
    ``run_dir``: "" for the first, else the first ``attempt-<n>`` (n >= 2) that holds no step log yet."""
    logs = Path(run_dir) / STEP_LOGS
    if not (logs / STEP_LOG_CSV).exists():
        return ""
    attempt = 2
    while (logs / f"attempt-{attempt}" / STEP_LOG_CSV).exists():
        attempt += 1
    return f"attempt-{attempt}"


# The reference's table columns come first in metrics.json, in this order.
HEADLINE_KEYS = (
    "job_id",
    "status",
    "epochs",
    "batch_size",
    "learning_rate",
    "val_IoU",
    "val_loss",
    "test_IoU",
    "test_loss",
)


class RunStatus(StrEnum):
    """The ``status`` a run writes into its metrics.json."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    # A search trial its pruner stopped early (retina_seg/training/pruning.py): trained, validated, not tested.
    PRUNED = "pruned"


def read_metrics(run_dir: Path | str) -> Any:
    """The parsed metrics.json; OSError when it cannot be read, ValueError when it is not JSON."""
    return json.loads((Path(run_dir) / METRICS_JSON).read_text())


def metrics_or_none(run_dir: Path | str) -> dict[str, Any] | None:
    """The run's metrics.json as a dict, or None when it is missing, unreadable or not a JSON object."""
    try:
        record = read_metrics(run_dir)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def completed_metrics(run_dir: Path | str) -> dict[str, Any] | None:
    """The run's metrics.json when the run finished, else None."""
    record = metrics_or_none(run_dir)
    return record if record is not None and record.get("status") == RunStatus.COMPLETED else None


def recorded_job_id(run_dir: Path | str) -> str | None:
    """The job id the run folder's metrics.json already holds (None when it has none or cannot be read)."""
    job = (metrics_or_none(run_dir) or {}).get("job_id")
    return str(job) if job not in (None, "") else None


def write_metrics(run_dir: Path | str, record: dict[str, Any]) -> Path:
    """Headline keys first (null when missing), then everything else; atomically."""
    ordered = {key: record.get(key) for key in HEADLINE_KEYS}
    ordered.update({k: v for k, v in record.items() if k not in ordered})
    return write_json_atomic(Path(run_dir) / METRICS_JSON, ordered)


def reserve_record_space(run_dir: Path | str) -> None:
    """Set space aside in the run folder for the record that ends the run (see ``write_final_metrics``).

    Why a reserve file rather than the alternatives: writing ``failed`` before every large write would leave a
    run killed mid-checkpoint recorded as failed, not as the interrupted run a rerun resumes; padding
    metrics.json to a fixed size would not help its atomic rewrite, which needs room for a second copy; and
    freeing the failed write's own partial file is not enough when something else (another run, another user)
    filled the disk. A reserve is freed at the moment the room is needed, whatever took the space."""
    set_space_aside(Path(run_dir) / SPACE_RESERVE, RESERVE_BYTES)


def write_final_metrics(run_dir: Path | str, record: dict[str, Any]) -> Path:
    """The run's last metrics.json (completed or failed), written into the space the reserve held."""
    (Path(run_dir) / SPACE_RESERVE).unlink(missing_ok=True)
    return write_metrics(run_dir, record)


def epoch_table_path(run_dir: Path | str) -> Path:
    """epochs.csv, or the metrics.csv an older run folder holds instead."""
    run_dir = Path(run_dir)
    legacy = run_dir / LEGACY_EPOCHS_CSV
    return legacy if legacy.exists() and not (run_dir / EPOCHS_CSV).exists() else run_dir / EPOCHS_CSV


def write_epoch_table(run_dir: Path | str, rows: list[dict[str, Any]]) -> Path:
    """epochs.csv: one row per epoch; columns are the union of keys, epoch first."""
    columns = ["epoch"] + sorted({k for row in rows for k in row} - {"epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(Path(run_dir) / EPOCHS_CSV, buffer.getvalue())


def read_epoch_table(run_dir: Path | str) -> list[dict[str, Any]]:
    """Rows of the per-epoch table with numbers parsed; an empty list when the file does not exist yet."""
    path = epoch_table_path(run_dir)
    if not path.exists():
        return []
    with path.open() as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _number(text: str) -> float | int | None:
    if text in ("", None):
        return None
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def write_test_images(run_dir: Path | str, rows: list[dict[str, Any]]) -> Path:
    """test_images.csv, atomically: the columns of TEST_IMAGES_COLUMNS, one row per image and protocol."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TEST_IMAGES_COLUMNS, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(Path(run_dir) / TEST_IMAGES_CSV, buffer.getvalue())


def read_test_images(run_dir: Path | str) -> list[dict[str, Any]]:
    """The rows of test_images.csv, image ids and protocol names as text, scores as floats; [] when the run folder
    has none (a run that has not tested yet, or one older than the file)."""
    path = Path(run_dir) / TEST_IMAGES_CSV
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            {"image": row["image"], "protocol": row["protocol"], **{k: float(row[k]) for k in TEST_IMAGES_COLUMNS[2:]}}
            for row in csv.DictReader(handle)
        ]
