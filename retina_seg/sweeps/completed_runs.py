"""Which runs of a sweep are already done: the run folder's metrics.json says so (status completed)."""
import json
from pathlib import Path

from ..training.run_folder import METRICS_JSON


def run_status(run_dir: Path | str) -> str | None:
    """The status in the run's metrics.json, or None when the file is missing or unreadable."""
    try:
        record = json.loads((Path(run_dir) / METRICS_JSON).read_text())
    except (OSError, ValueError):
        return None
    return record.get("status") if isinstance(record, dict) else None


def is_completed(run_dir: Path | str) -> bool:
    return run_status(run_dir) == "completed"
