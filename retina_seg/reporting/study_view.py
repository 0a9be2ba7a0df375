"""A search's own view of its study, from the sweep folder's study.json (records/study_record.py), computed with
Optuna's own functions: the best trial and its run folder, the trials counted by state, the optimisation
history (Optuna's matplotlib figure) and the parameter importances (Optuna's default evaluator, PED-ANOVA).

The study is opened read-only in effect: a journal file or SQLite database that does not exist is an error
rather than created, and tables are never created in a database.
"""

import io
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import optuna
from optuna.exceptions import ExperimentalWarning, OptunaError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState
from optuna.visualization.matplotlib import plot_optimization_history
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ..records.study_record import STUDY_JSON, StudyRecord, StudyRecordError, read_study_record, storage_url
from ..tracking import optuna_study
from .runs import ReportError, is_run_dir
from .table import markdown_table

# The states a trial can be in, in the order the report counts them.
STATES = {
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
    "running": TrialState.RUNNING,
    "waiting": TrialState.WAITING,
}


@dataclass(frozen=True)
class BestTrial:
    number: int
    value: float
    params: dict[str, Any]
    run_dir: Path


@dataclass
class StudyView:
    """One study as the report shows it; ``importances_note`` says why there are no importances."""

    record: StudyRecord
    direction: str
    counts: dict[str, int]
    best: BestTrial | None
    importances: dict[str, float] = field(default_factory=dict)
    importances_note: str = ""
    history_png: bytes = b""

    @property
    def history_name(self) -> str:
        """The history figure's file name in the report folder, one per study name."""
        return "study_history_" + re.sub(r"[^A-Za-z0-9_.-]+", "-", self.record.study_name) + ".png"


def find_study_records(paths: Iterable[Path]) -> list[Path]:
    """The study.json of every sweep folder under ``paths`` (the search stops at run folders and hidden ones)."""
    found = []
    for root in paths:
        for here, subdirs, files in os.walk(root):
            if is_run_dir(Path(here)):
                subdirs.clear()
                continue
            if STUDY_JSON in files:
                found.append(Path(here) / STUDY_JSON)
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
    return found


def read_study_views(paths: Iterable[Path]) -> list[StudyView]:
    """The view of every study under ``paths``; ReportError naming the study.json whose study cannot be read."""
    views = []
    for path in find_study_records(paths):
        try:
            record = read_study_record(path)
            views.append(study_view(record, load_study(record)))
        except StudyRecordError as error:
            raise ReportError(str(error)) from error
    return views


def load_study(record: StudyRecord) -> optuna.Study:
    """The record's study from its storage; StudyRecordError (naming study.json) when it cannot be opened."""
    shown = record.storage or str(record.journal)
    try:
        return optuna.load_study(study_name=record.study_name, storage=open_storage(record))
    except KeyError as error:
        raise StudyRecordError(f"{record.path}: no study named {record.study_name!r} in {shown}") from error
    except StudyRecordError:
        raise
    except (SQLAlchemyError, OptunaError, OSError, ValueError, RuntimeError) as error:
        raise StudyRecordError(f"{record.path}: storage {shown} cannot be opened: {error}") from error


def open_storage(record: StudyRecord) -> BaseStorage:
    """The journal file or the database the record names, never creating either."""
    if record.journal is not None:
        if not record.journal.is_file():
            raise StudyRecordError(f"{record.path}: its journal {record.journal} does not exist")
        return optuna_study.open_storage(str(record.journal))  # the sweeper's own journal lock
    url = storage_url(record)
    database = make_url(url).database
    if make_url(url).get_backend_name() == "sqlite" and database and not Path(database).is_file():
        raise StudyRecordError(f"{record.path}: the SQLite database {database} of its storage does not exist")
    return optuna_study.open_storage(url, create=False)


def study_view(record: StudyRecord, study: optuna.Study) -> StudyView:
    trials = study.get_trials(deepcopy=False)
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    importances, note = param_importances(study, complete)
    return StudyView(
        record,
        study.direction.name.lower(),
        {name: sum(trial.state == state for trial in trials) for name, state in STATES.items()},
        best_trial(record, study) if complete else None,
        importances,
        note,
        history_png(study, record.metric),
    )


def best_trial(record: StudyRecord, study: optuna.Study) -> BestTrial:
    best = study.best_trial
    return BestTrial(best.number, best.value, dict(best.params), record.trial_dir(best.number))


def param_importances(study: optuna.Study, complete: list[FrozenTrial]) -> tuple[dict[str, float], str]:
    """Optuna's importances, or none and why: they need two completed trials and a parameter that varies."""
    if len(complete) < 2:
        return {}, f"importances need at least 2 completed trials; the study has {len(complete)}."
    varying = {name for name in complete[0].params if len({repr(t.params.get(name)) for t in complete}) > 1}
    if not varying:
        return {}, "no parameter takes more than one value among the completed trials."
    try:
        return optuna.importance.get_param_importances(study), ""
    except (ValueError, RuntimeError) as error:
        return {}, f"Optuna could not compute them: {error}"


def history_png(study: optuna.Study, metric: str) -> bytes:
    """Optuna's optimisation history figure (objective per trial and the best so far) as PNG bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        axes = plot_optimization_history(study, target_name=metric)
    figure = axes.figure
    try:
        figure.set_size_inches(8, 4.5)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()
    finally:
        plt.close(figure)


def study_markdown(view: StudyView) -> str:
    """The study's section of report.md."""
    record = view.record
    lines = [
        f"## Study {record.study_name}",
        "",
        f"{record.path}: storage {record.storage or record.journal}, {view.direction} {record.metric}, "
        f"{sum(view.counts.values())} of {record.n_trials} trial(s): " + counts_text(view.counts) + ".",
        "",
        best_text(view),
    ]
    if view.importances:
        body = [[name, f"{value:.4f}"] for name, value in view.importances.items()]
        table = markdown_table(["parameter", "importance"], body)
        lines += ["", "Parameter importances (Optuna, PED-ANOVA):", "", *table]
    else:
        lines += ["", f"No parameter importances: {view.importances_note}"]
    lines += ["", f"Optimisation history: {view.history_name}", ""]
    return "\n".join(lines) + "\n"


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {state}" for state, count in counts.items())


def best_text(view: StudyView) -> str:
    best = view.best
    if best is None:
        return "Best trial: none yet (no trial completed)."
    params = ", ".join(f"{name}={value!r}" for name, value in best.params.items())
    return f"Best trial: {best.number}, {view.record.metric} {best.value:.4f} ({params}), run folder {best.run_dir}"


def study_json(view: StudyView) -> dict[str, Any]:
    """The study's entry under ``studies`` in report.json."""
    record, best = view.record, view.best
    return {
        "study_json": str(record.path),
        "study_name": record.study_name,
        "storage": record.storage,
        "direction": view.direction,
        "metric": record.metric,
        "n_trials": record.n_trials,
        "counts": view.counts,
        "best": None
        if best is None
        else {"number": best.number, "value": best.value, "params": best.params, "run_dir": str(best.run_dir)},
        "importances": view.importances,
        "importances_note": view.importances_note or None,
        "history_png": view.history_name,
    }
