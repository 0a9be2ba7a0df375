"""The Optuna study a search's trials report to: its storage and its pruner, opened one way by the search
sweeper (retina_seg/sweeps/) and by a trial's pruning callback (retina_seg/training/pruning.py).

A storage is named by one string: a database URL (anything with ``://``: ``sqlite:///...``,
``mysql+pymysql://...``) or else the path of an Optuna journal file. The journal's lock is Optuna's
``JournalFileOpenLock`` (an exclusively created file), which holds on a cluster's shared filesystem where
symbolic-link locks are unreliable. A trial gets the storage through ``STUDY_STORAGE_ENV``, set by its worker
process, never through its config: a run's config is written into its folder, and a URL may hold a password.
"""

from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from ..records.study_record import is_database_url

PRUNERS = ("none", "median", "successive_halving", "hyperband", "threshold")


def open_storage(storage: str, create: bool = True) -> BaseStorage:
    """The storage a string names (see the module docstring); errors of the database driver pass through. With
    ``create`` false a database's tables are never created (the report reads a study, it makes none)."""
    if is_database_url(storage):
        return optuna.storages.RDBStorage(storage, heartbeat_interval=None, skip_table_creation=not create)
    return JournalStorage(JournalFileBackend(storage, lock_obj=JournalFileOpenLock(storage)))


def build_pruner(name: str, settings: dict[str, Any]) -> optuna.pruners.BasePruner:
    """Optuna's pruner of that name with the settings it takes (``settings`` may hold others' too); ValueError
    naming an unknown one."""
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings["n_startup_trials"], n_warmup_steps=settings["n_warmup_steps"]
        )
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings["min_resource"], reduction_factor=settings["reduction_factor"]
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=settings["min_resource"],
            max_resource=settings["max_resource"],
            reduction_factor=settings["reduction_factor"],
        )
    if name == "threshold":
        return optuna.pruners.ThresholdPruner(
            lower=settings["lower"], upper=settings["upper"], n_warmup_steps=settings["n_warmup_steps"]
        )
    raise ValueError(f"unknown pruner {name!r}: one of {list(PRUNERS)}")
