"""The run folder contract: metrics.json, metrics.csv, checkpoints/, progress.png (see README)."""
import csv
import io
import json
from pathlib import Path
from typing import Any

from ..utils.atomic import write_json_atomic, write_text_atomic

METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
PROGRESS_PNG = "progress.png"
CHECKPOINTS = "checkpoints"

# The reference's table columns come first in metrics.json, in this order.
HEADLINE_KEYS = ("job_id", "status", "epochs", "batch_size", "learning_rate",
                 "val_IoU", "val_loss", "test_IoU", "test_loss")


def read_metrics(run_dir: Path | str) -> dict[str, Any]:
    return json.loads((Path(run_dir) / METRICS_JSON).read_text())


def recorded_job_id(run_dir: Path | str) -> str | None:
    """The job id the run folder's metrics.json already holds (None when it has none or cannot be read)."""
    try:
        job = read_metrics(run_dir).get("job_id")
    except (OSError, ValueError, AttributeError):
        return None
    return str(job) if job not in (None, "") else None


def write_metrics(run_dir: Path | str, record: dict[str, Any]) -> Path:
    """Headline keys first (null when missing), then everything else; atomically."""
    ordered = {key: record.get(key) for key in HEADLINE_KEYS}
    ordered.update({k: v for k, v in record.items() if k not in ordered})
    return write_json_atomic(Path(run_dir) / METRICS_JSON, ordered)


def write_epoch_table(run_dir: Path | str, rows: list[dict[str, Any]]) -> Path:
    """metrics.csv: one row per epoch; columns are the union of keys, epoch first."""
    columns = ["epoch"] + sorted({k for row in rows for k in row} - {"epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(Path(run_dir) / METRICS_CSV, buffer.getvalue())


def read_epoch_table(run_dir: Path | str) -> list[dict[str, Any]]:
    """Rows of metrics.csv with numbers parsed; an empty list when the file does not exist yet."""
    path = Path(run_dir) / METRICS_CSV
    if not path.exists():
        return []
    with path.open() as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _number(text: str) -> float | int | None:
    if text in ("", None):
        return None
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value
