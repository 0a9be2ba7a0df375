"""Run folders (or Comet offline archives) read into rows of the job-id table, whatever state each run is in.

Which folders are runs: every folder under the given paths that holds ``metrics.json`` or ``.hydra/`` (a
Hydra sweep ``<sweep>/<job_num>/``, sweeps nested in other folders, or one run folder given directly). The
search stops at a run folder and never enters ``checkpoints/`` or hidden folders (``.hydra``, ``.submitit``).

What a row shows, by status (the table's rule "``-`` where a value does not exist"):

- ``completed``: the values of metrics.json.
- ``running``: the hyperparameters and the best val_IoU / val_loss so far (the run rewrites metrics.json
  after every epoch); test values are ``-`` because the test has not run yet.
- ``stale``: shown as ``running``, but its process is gone (killed, or its node lost): on this host its
  pid is no longer alive; on another host, its heartbeat is older than ``STALE_AFTER_S``. Rerun it to resume.
- ``failed``: the hyperparameters; every metric is ``-`` (a failed run has no result); a problem line gives
  the error it recorded.

A stale or failed run's problem line also says what the same command would do: resume from the run's last
checkpoint, or, when the run wrote none, start from the beginning.
- ``pruned``: stopped early by a search's pruner (``pruned_at_epoch`` in metrics.json): like ``running``, the
  hyperparameters and its best val_IoU / val_loss, test values ``-`` (it was not tested); not a problem, never
  ranked, and a group counts it apart from its completed replicates (its training was cut short).
- ``pending``: ``.hydra/`` but no metrics.json yet (the job has not begun training, or was killed before):
  only the job id, taken from ``.hydra/hydra.yaml`` (``hydra.job.id``) or else the folder name.
- ``corrupt``: metrics.json unreadable, not JSON, or holding a value of the wrong type: only the job id.

Pending and corrupt runs, a completed run without epochs.csv, an unreadable epochs.csv and a job id found
in more than one folder are listed as problems, each naming the file and what is wrong. A score that is
not finite (a diverged run) counts as a value that does not exist.
"""

import csv
import json
import math
import os
import socket
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ..records.groups import flatten_config
from ..records.protocols import PER_IMAGE_SCORES, PROTOCOLS
from ..records.run_folder import (
    CHECKPOINTS,
    HEADLINE_KEYS,
    METRICS_JSON,
    RunStatus,
    epoch_table_path,
    read_epoch_table,
    read_metrics,
)
from .comet_archives import ArchiveError, read_archive_records

COMPLETED, RUNNING, FAILED, PRUNED = RunStatus.COMPLETED, RunStatus.RUNNING, RunStatus.FAILED, RunStatus.PRUNED
# What the report makes of a folder whose record does not say (or no longer says) its state.
PENDING, CORRUPT, STALE = "pending", "corrupt", "stale"
RECORDED_STATUSES = tuple(RunStatus)
# The per-epoch columns of epochs.csv the report draws: val_IoU is scored at the fit's threshold 0.5.
CURVE_KEYS = ("val_IoU", "train_loss", "val_loss")

# The table's value columns, in the order of the run folder contract.
VALUE_KEYS = HEADLINE_KEYS[2:]
# Scores of other evaluation protocols, shown as extra columns when asked for (retina-seg-report --protocol).
PROTOCOL_KEYS = {
    protocol.name: tuple(protocol.key("test", score) for score in PER_IMAGE_SCORES)
    for protocol in PROTOCOLS.values()
    if protocol.key_suffix
}
INTEGER_KEYS = ("epochs", "batch_size")
HYPERPARAMETER_KEYS = ("epochs", "batch_size", "learning_rate")
VAL_KEYS = ("val_IoU", "val_loss")
# What a group summarises over its completed runs: val and test scores and losses, under every protocol.
SCORE_KEYS = (
    "val_IoU",
    "val_Dice",
    "val_loss",
    "test_IoU",
    "test_Dice",
    "test_loss",
    *(key for keys in PROTOCOL_KEYS.values() for key in keys),
)
# What ranks runs and groups when metrics.json names no objective (runs older than the objective).
DEFAULT_OBJECTIVE_METRIC, OBJECTIVE_MODES = "val_IoU", ("max", "min")
# A running run on another host (its pid cannot be checked) is stale when its heartbeat is this old: far
# beyond the writer's heartbeat interval, and beyond a validation or test pass of the real data sets.
STALE_AFTER_S = 15 * 60


class ReportError(Exception):
    """Nothing to tabulate: a path does not exist, or no run folder was found; the message says which."""


class MetricsError(ValueError):
    """A metrics record that cannot be tabulated; the message says which key and what is wrong."""


@dataclass(frozen=True)
class Objective:
    """The validation metric that ranks runs and groups, whether higher or lower is better, and the run's value."""

    metric: str
    mode: str
    value: float | None


@dataclass
class Run:
    """One row of the table: the values it shows (None = ``-``), its per-epoch curves (``CURVE_KEYS``: epoch,
    value pairs), its problems; for grouping, its flattened config, its scores (completed runs only) and its
    objective."""

    job_id: str
    status: str
    source: str
    values: dict[str, float | int | None] = field(default_factory=dict)
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)
    objective: Objective | None = None

    @property
    def history(self) -> list[tuple[int, float]]:
        """The per-epoch val_IoU@0.5 curve."""
        return self.curves.get("val_IoU", [])


def find_run_dirs(paths: Iterable[Path | str]) -> list[Path]:
    """Every run folder under ``paths``, each once; a missing path or finding none at all is an error."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise ReportError(f"{path}: no such folder")
        if not path.is_dir():
            raise ReportError(f"{path}: not a folder (expected a sweep folder or a run folder)")
        found.extend(_run_dirs_under(path))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ReportError(
            f"no run folder (a folder with {METRICS_JSON} or .hydra/) found in: " + ", ".join(str(p) for p in paths)
        )
    return unique


def is_run_dir(path: Path) -> bool:
    return (path / METRICS_JSON).is_file() or (path / ".hydra").is_dir()


def _run_dirs_under(root: Path) -> list[Path]:
    found = []
    for here, subdirs, _ in os.walk(root):
        if is_run_dir(Path(here)):
            found.append(Path(here))
            subdirs.clear()
        else:
            subdirs[:] = sorted(d for d in subdirs if d != CHECKPOINTS and not d.startswith("."))
    return found


def read_run(run_dir: Path) -> Run:
    """The row of one run folder; a missing or corrupt metrics.json gives a marked row, never an error."""
    path = run_dir / METRICS_JSON
    if not path.exists():
        return Run(
            hydra_job_id(run_dir),
            PENDING,
            str(run_dir),
            problems=[f"{path}: missing (pending: the job has not started training, or was killed)"],
        )
    try:
        metrics = check_metrics(_load_json(path))
    except MetricsError as error:
        return Run(hydra_job_id(run_dir), CORRUPT, str(run_dir), problems=[f"{path}: corrupt metrics.json: {error}"])
    curves, problems = _read_curves(run_dir, metrics["status"])
    run = run_from_metrics(metrics, str(run_dir), curves, problems, default_id=hydra_job_id(run_dir))
    if run.status == RUNNING and is_stale(metrics):
        run.status = STALE
        run.problems.append(
            f"{path}: stale: status running, but its process (pid {metrics.get('pid')} on "
            f"{metrics.get('host')}, last heartbeat {metrics.get('heartbeat')}) is gone; {rerun_outcome(run_dir)}"
        )
    if run.status == FAILED:
        run.problems.append(f"{path}: failed: {metrics.get('error') or 'no error recorded'}; {rerun_outcome(run_dir)}")
    return run


def rerun_outcome(run_dir: Path) -> str:
    """What rerunning the command does: resume (``resume=auto``) only from a checkpoint that exists."""
    if any((run_dir / CHECKPOINTS).glob("*.ckpt")):
        return "rerun the same command to resume it from its last checkpoint"
    return "it wrote no checkpoint, so rerunning the same command starts it from the beginning"


def is_stale(metrics: dict[str, Any]) -> bool:
    """A running record whose writer is gone (see the module docstring); False when it cannot be told."""
    if metrics.get("host") == socket.gethostname() and isinstance(metrics.get("pid"), int):
        return not process_alive(metrics["pid"])
    try:
        beat = datetime.fromisoformat(str(metrics["heartbeat"]))
    except (KeyError, ValueError):
        return False
    return (datetime.now(UTC) - beat).total_seconds() > STALE_AFTER_S


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs on this host (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _load_json(path: Path) -> Any:
    try:
        return read_metrics(path.parent)
    except OSError as error:
        raise MetricsError(f"cannot be read ({error.strerror})") from error
    except UnicodeDecodeError as error:
        raise MetricsError(f"not text ({error.reason})") from error
    except json.JSONDecodeError as error:
        raise MetricsError(f"not valid JSON ({error})") from error


def check_metrics(metrics: Any) -> dict[str, Any]:
    """The record itself when the table can use it; else MetricsError naming the key that is wrong."""
    if not isinstance(metrics, dict):
        raise MetricsError(f"expected a JSON object, found {type(metrics).__name__}")
    if metrics.get("status") not in RECORDED_STATUSES:
        raise MetricsError(f"status is {metrics.get('status')!r}, expected one of {list(RECORDED_STATUSES)}")
    job = metrics.get("job_id")
    if isinstance(job, bool) or not isinstance(job, (str, int, type(None))):
        raise MetricsError(f"job_id is {job!r}, expected a string")
    for key in VALUE_KEYS:
        value = metrics.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise MetricsError(f"{key} is {value!r}, expected a number or null")
        if key in INTEGER_KEYS and value is not None and not float(value).is_integer():
            raise MetricsError(f"{key} is {value!r}, expected an integer")
    objective = metrics.get("objective")
    if objective is not None and (
        not isinstance(objective, dict)
        or not isinstance(objective.get("metric"), str)
        or objective.get("mode") not in OBJECTIVE_MODES
    ):
        raise MetricsError(f"objective is {objective!r}, expected {{'metric': ..., 'mode': 'max' or 'min'}}")
    config = metrics.get("config")
    if config is not None and not isinstance(config, dict):
        raise MetricsError(f"config is {type(config).__name__}, expected a mapping")
    return metrics


def objective_of(metrics: dict[str, Any]) -> Objective:
    """metrics.json's objective; a record without one is ranked by its val_IoU, higher is better."""
    objective = metrics.get("objective") or {"metric": DEFAULT_OBJECTIVE_METRIC, "mode": "max"}
    value = objective.get("value", metrics.get(objective["metric"]))
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return Objective(objective["metric"], objective["mode"], _finite(number))


def run_from_metrics(
    metrics: dict[str, Any],
    source: str,
    curves: dict[str, list[tuple[int, float]]],
    problems: list[str],
    default_id: str,
) -> Run:
    """A row from a checked record, showing only the values its status allows (see the module docstring)."""
    status = metrics["status"]
    protocol_keys = tuple(key for keys in PROTOCOL_KEYS.values() for key in keys)
    shown = {
        COMPLETED: VALUE_KEYS + protocol_keys,
        RUNNING: HYPERPARAMETER_KEYS + VAL_KEYS,
        FAILED: HYPERPARAMETER_KEYS,
        PRUNED: HYPERPARAMETER_KEYS + VAL_KEYS,
    }[status]
    values = {key: _finite(metrics.get(key)) if key in shown else None for key in VALUE_KEYS + protocol_keys}
    job = metrics.get("job_id")
    scores = {key: _number(metrics.get(key)) for key in SCORE_KEYS} if status == COMPLETED else {}
    return Run(
        default_id if job in (None, "") else str(job),
        status,
        source,
        values,
        curves,
        problems,
        config=flatten_config(metrics.get("config") or {}),
        scores=scores,
        objective=objective_of(metrics) if status == COMPLETED else None,
    )


def _number(value: Any) -> float | None:
    """A finite number, else None (a score of another type is not a score)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return _finite(value)


def _finite(value: float | int | None) -> float | int | None:
    return value if value is None or math.isfinite(value) else None


def _read_curves(run_dir: Path, status: str) -> tuple[dict[str, list[tuple[int, float]]], list[str]]:
    """The ``CURVE_KEYS`` columns of epochs.csv as (epoch, value) pairs (val_IoU scored at the fit's threshold
    0.5: the report names it val_IoU@0.5); a problem when a completed run lacks the file or it is unreadable."""
    path = epoch_table_path(run_dir)
    if not path.exists():
        return {}, [f"{path}: missing, so no val_IoU curve for this completed run"] if status == COMPLETED else []
    try:
        return epoch_curves(read_epoch_table(run_dir)), []
    except (OSError, ValueError, TypeError, KeyError, csv.Error) as error:
        return {}, [f"{path}: corrupt {path.name}, so no val_IoU curve ({type(error).__name__}: {error})"]


def epoch_curves(rows: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Each ``CURVE_KEYS`` column that has values: (epoch, value) pairs, rows without it skipped."""
    curves = {key: [(int(r["epoch"]), float(r[key])) for r in rows if r.get(key) is not None] for key in CURVE_KEYS}
    return {key: pairs for key, pairs in curves.items() if pairs}


def hydra_job_id(run_dir: Path) -> str:
    """Hydra's ``hydra.job.id`` for the folder (the id the run reports itself), or else the folder's name."""
    try:
        job = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):
        return run_dir.name
    job_id = job.get("id") if isinstance(job, dict) else None
    return run_dir.name if job_id in (None, "", "???") else str(job_id)


def read_runs(paths: Iterable[Path | str]) -> list[Run]:
    """The rows of every run folder under ``paths`` (ReportError when there is none)."""
    return [read_run(run_dir) for run_dir in find_run_dirs(paths)]


def read_comet_runs(paths: Iterable[Path | str]) -> list[Run]:
    """The rows of Comet offline archives; an unreadable archive stops the report naming the file."""
    runs = []
    for path in map(Path, paths):
        if not path.exists():
            raise ReportError(f"{path}: no such file or folder")
        try:
            records = read_archive_records(path)
        except ArchiveError as error:
            raise ReportError(str(error)) from error
        runs.extend(_comet_run(record, path) for record in records)
    if not runs:
        raise ReportError("no Comet experiment found in: " + ", ".join(str(p) for p in paths))
    return runs


def _comet_run(record: dict[str, Any], path: Path) -> Run:
    fallback = str(record.get("job_id") or path.name)
    try:
        check_metrics(record)
        curves = epoch_curves(record.get("history") or [])
    except (MetricsError, KeyError, TypeError, ValueError) as error:
        return Run(fallback, CORRUPT, str(path), problems=[f"{path}: corrupt Comet record of job {fallback}: {error}"])
    return run_from_metrics(record, str(path), curves, [], default_id=fallback)


def duplicate_id_problems(runs: list[Run]) -> list[str]:
    """Two folders with one job id (e.g. two basic-launcher sweeps both start at 0) make the table ambiguous."""
    counts = Counter(run.job_id for run in runs)
    return [
        f"job id {job} appears in {counts[job]} places: " + ", ".join(run.source for run in runs if run.job_id == job)
        for job in dict.fromkeys(run.job_id for run in runs)
        if counts[job] > 1
    ]
