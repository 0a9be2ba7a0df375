"""The study record of a search's sweep folder (``<sweep>/study.json``): where its Optuna study is stored, its
name, direction and objective, and how many trials it plans; each trial's run folder is ``<sweep>/<trial number>/``.

``storage`` null means Optuna's journal file in the sweep folder (``STUDY_JOURNAL``); a string with ``://`` is a
database URL whose password, if any, is written as ``***``; any other string is the path of a journal file.
A masked URL is opened with the password of ``STUDY_STORAGE_ENV``: either the whole storage URL (its password is
taken) or the password alone.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

STUDY_JSON = "study.json"
STUDY_JOURNAL = "optuna.journal"
STUDY_STORAGE_ENV = "RETINA_SEG_STUDY_STORAGE"
MASKED_PASSWORD = "***"
DIRECTIONS = ("maximize", "minimize")


def is_database_url(storage: str) -> bool:
    return "://" in storage


def masked_storage(storage: str) -> str:
    """The storage with any password in its URL written as ``MASKED_PASSWORD``, for files and messages."""
    if not is_database_url(storage):
        return storage
    url = make_url(storage)
    return storage if url.password is None else url.set(password=MASKED_PASSWORD).render_as_string(hide_password=False)


def study_json_payload(
    sweep_dir: Path, storage: str, study_name: str, direction: str, metric: str, n_trials: int, **details: Any
) -> dict[str, Any]:
    """What the search writes to study.json: ``storage`` as this module reads it (null for the sweep folder's own
    journal, a database URL with its password masked), then ``details`` (its settings, for a person)."""
    return {
        "storage": None if Path(storage) == Path(sweep_dir) / STUDY_JOURNAL else masked_storage(storage),
        "study_name": study_name,
        "direction": direction,
        "metric": metric,
        "n_trials": n_trials,
        **details,
    }


class StudyRecordError(ValueError):
    """A study record that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class StudyRecord:
    """study.json as written: ``storage`` is None for the sweep folder's journal file, else a (masked) URL."""

    path: Path
    storage: str | None
    study_name: str
    direction: str
    metric: str
    n_trials: int

    @property
    def sweep_dir(self) -> Path:
        return self.path.parent

    @property
    def journal(self) -> Path | None:
        """The journal file of the study, or None when it lives in a database."""
        if self.storage is None:
            return self.sweep_dir / STUDY_JOURNAL
        return None if is_database_url(self.storage) else Path(self.storage)

    def trial_dir(self, number: int) -> Path:
        return self.sweep_dir / str(number)


def read_study_record(path: Path) -> StudyRecord:
    """The checked record at ``path``; StudyRecordError naming the file and the key otherwise."""
    try:
        data: Any = json.loads(path.read_text())
    except OSError as error:
        raise StudyRecordError(f"{path}: cannot be read ({error.strerror})") from error
    except ValueError as error:
        raise StudyRecordError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise StudyRecordError(f"{path}: expected a JSON object, found {type(data).__name__}")
    checks = {
        "storage": data.get("storage") is None or isinstance(data.get("storage"), str),
        "study_name": isinstance(data.get("study_name"), str) and data.get("study_name") != "",
        "direction": data.get("direction") in DIRECTIONS,
        "metric": isinstance(data.get("metric"), str),
        "n_trials": isinstance(data.get("n_trials"), int) and not isinstance(data.get("n_trials"), bool),
    }
    for key, valid in checks.items():
        if not valid:
            raise StudyRecordError(f"{path}: {key} is {data.get(key)!r}, which is not usable")
    return StudyRecord(path, data["storage"], data["study_name"], data["direction"], data["metric"], data["n_trials"])


def storage_url(record: StudyRecord) -> str:
    """The storage URL of a record that has one, with its real password (from ``STUDY_STORAGE_ENV`` when masked)."""
    try:
        url = make_url(record.storage)
    except ArgumentError as error:
        raise StudyRecordError(f"{record.path}: storage {record.storage!r} is not a storage URL") from error
    if url.password != MASKED_PASSWORD:
        return record.storage
    given = os.environ.get(STUDY_STORAGE_ENV)
    if not given:
        raise StudyRecordError(
            f"{record.path}: the password of storage {record.storage} is masked; set {STUDY_STORAGE_ENV} to the "
            "storage URL (or its password) to open it"
        )
    return url.set(password=_password(given)).render_as_string(hide_password=False)


def _password(given: str) -> str:
    """The password in ``given``: a URL's own, or ``given`` itself when it is not a URL with one."""
    try:
        url: URL = make_url(given)
    except ArgumentError:
        return given
    return url.password if url.password is not None else given
