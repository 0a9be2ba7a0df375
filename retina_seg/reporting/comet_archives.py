"""Comet offline archives read back as job-id table records.

What CometRunLogger sends is all the table needs: the experiment name is the job id, the hyperparameters
are flattened config keys, every fit epoch is one step, and the final scores (val at the chosen
threshold, test) are logged at step ``epochs_done``, after the last epoch. Reading the archives back is
therefore the proof that the runs of a sweep can be compared in Comet itself.

An archive is a zip holding ``experiment.json`` and ``messages.json`` (one JSON message per line); zips
without those two files are not Comet archives and are skipped. A resumed run (a requeued job) leaves a
second archive with the same name in the same folder: they are one run, read as one record, the later
archive continuing the earlier one.
"""

import json
import logging
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records.groups import GROUP_PARAMETER, SWEEP_PARAMETER
from ..records.run_folder import RunStatus

log = logging.getLogger(__name__)

EXPERIMENT_JSON, MESSAGES_JSON = "experiment.json", "messages.json"
# The table's hyperparameter columns and the config keys the run logged them under.
HYPERPARAMETERS = {"epochs": "trainer.max_epochs", "batch_size": "data.batch_size", "learning_rate": "optimizer.lr"}


class ArchiveError(ValueError):
    """A Comet archive that cannot be read; the message names the file and what is wrong."""


@dataclass
class Experiment:
    """What one archive holds: logged "others" (Name, status, ...), parameters, and metrics per step."""

    others: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    steps: dict[int, dict[str, float]] = field(default_factory=dict)
    start_time: int = 0

    def continue_with(self, later: "Experiment") -> None:
        """Fold a resumed run's experiment into this one; its values win."""
        self.others.update(later.others)
        self.parameters.update(later.parameters)
        for step, values in later.steps.items():
            self.steps.setdefault(step, {}).update(values)


def read_archive_records(path: Path | str) -> list[dict[str, Any]]:
    """One record per experiment archive under ``path`` (a folder, searched recursively, or one zip)."""
    path = Path(path)
    if not path.exists():
        raise ArchiveError(f"{path}: no such file or folder")
    archives = [path] if path.is_file() else sorted(path.rglob("*.zip"))
    found = [(archive, experiment) for archive in archives if (experiment := read_archive(archive)) is not None]
    runs: dict[tuple[Path, Any], tuple[Path, Experiment]] = {}
    for archive, experiment in sorted(found, key=lambda item: item[1].start_time):
        run = (archive.parent, experiment.others.get("Name") or archive)
        if run in runs:
            runs[run][1].continue_with(experiment)
        else:
            runs[run] = (archive, experiment)
    return [table_record(experiment, archive) for archive, experiment in sorted(runs.values(), key=lambda r: r[0])]


def read_archive(archive: Path) -> Experiment | None:
    """The experiment in ``archive``, or None when the zip is not a Comet archive."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            if not {EXPERIMENT_JSON, MESSAGES_JSON} <= set(bundle.namelist()):
                log.warning(
                    "%s: skipped, not a Comet offline archive (no %s and %s)", archive, EXPERIMENT_JSON, MESSAGES_JSON
                )
                return None
            header = json.loads(bundle.read(EXPERIMENT_JSON))
            lines = bundle.read(MESSAGES_JSON).decode("utf-8").splitlines()
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArchiveError(f"{archive}: cannot be read as a Comet archive ({error})") from error
    started = header.get("start_time") if isinstance(header, dict) else None
    experiment = Experiment(start_time=started or 0)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            _apply(experiment, json.loads(line))
        except (ValueError, KeyError, TypeError) as error:
            raise ArchiveError(
                f"{archive}: {MESSAGES_JSON} line {number} is not a Comet message ({type(error).__name__}: {error})"
            ) from error
    return experiment


def _apply(experiment: Experiment, message: dict[str, Any]) -> None:
    """Fold one message into the experiment; later values win, as in Comet's own summary."""
    payload = message["payload"]
    if message["type"] == "log_other":
        experiment.others[payload["key"]] = payload["value"]
    elif message["type"] == "parameter_msg" and payload["param"].get("source") != "auto-logged":
        experiment.parameters[payload["param"]["paramName"]] = payload["param"]["paramValue"]
    elif message["type"] == "metric_msg" and payload["metric"].get("step") is not None:
        metric = payload["metric"]
        experiment.steps.setdefault(int(metric["step"]), {})[metric["metricName"]] = metric["metricValue"]


def table_record(experiment: Experiment, archive: Path) -> dict[str, Any]:
    """The metrics.json headline keys, best_epoch, threshold, git_commit, the val history, the archive, and the
    logged parameters as ``config`` (the flattened config, values as Comet keeps them) with the sweep and group."""
    done = experiment.others.get("epochs_done")
    final = experiment.steps.get(done, {}) if done is not None else {}
    history = [
        {"epoch": step, "val_IoU": row.get("val_IoU"), "val_loss": row.get("val_loss")}
        for step, row in sorted(experiment.steps.items())
        if (done is None or step < done) and ("val_IoU" in row or "val_loss" in row)
    ]
    val = final if "val_IoU" in final else _best(history)
    status = experiment.others.get("status") or (RunStatus.COMPLETED if "test_IoU" in final else RunStatus.RUNNING)
    record = {
        "job_id": experiment.others.get("Name"),
        "status": status,
        **{key: experiment.parameters.get(name) for key, name in HYPERPARAMETERS.items()},
        "val_IoU": val.get("val_IoU"),
        "val_loss": val.get("val_loss"),
        "test_IoU": final.get("test_IoU"),
        "test_loss": final.get("test_loss"),
    }
    return {
        **record,
        **{name: value for name, value in final.items() if name.startswith(("val_", "test_")) and name not in record},
        "best_epoch": experiment.others.get("best_epoch"),
        "threshold": experiment.others.get("threshold"),
        "git_commit": experiment.others.get("git_commit"),
        "history": history,
        "archive": str(archive),
        "config": dict(experiment.parameters),
        GROUP_PARAMETER: experiment.parameters.get(GROUP_PARAMETER),
        SWEEP_PARAMETER: experiment.parameters.get(SWEEP_PARAMETER),
    }


def _best(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch with the highest val_IoU so far (what metrics.json shows while a run is unfinished)."""
    scored = [row for row in history if isinstance(row["val_IoU"], (int, float)) and not math.isnan(row["val_IoU"])]
    return max(scored, key=lambda row: row["val_IoU"]) if scored else {}
