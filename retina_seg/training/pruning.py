"""A search trial's pruning: after each validation the objective goes to the trial, and a trial its pruner
stops ends training at once (the run folder says ``pruned``; docs/search.md).

Added to a trial's config only, by the search's worker (retina_seg/sweeps/trial_worker.py), with plain values
(study name, trial number, metric, pruner) so that it pickles; the storage comes from ``STUDY_STORAGE_ENV``. Under
DDP only rank 0 talks to the study, and its decision is broadcast so that every rank stops together.
"""

import logging
import os
from typing import Any

import lightning.pytorch as pl
import optuna
from lightning.pytorch.trainer.states import TrainerFn

from ..records.study_record import STUDY_STORAGE_ENV
from ..tracking.optuna_study import build_pruner, open_storage

log = logging.getLogger(__name__)


class OptunaPruning(pl.Callback):
    """Reports ``metric`` to the trial at each validation; ``pruned_at_epoch`` is the epoch it was pruned at."""

    def __init__(self, study_name: str, trial_number: int, metric: str, pruner: dict[str, Any]):
        self.study_name, self.trial_number, self.metric = study_name, trial_number, metric
        self.pruner = dict(pruner)
        self.pruned_at_epoch: int | None = None
        self._trial: optuna.Trial | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:  # not the final validation of the best
            return
        prune = self._report_safely(trainer) if trainer.is_global_zero else False
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_at_epoch = trainer.current_epoch
            trainer.should_stop = True

    def _report_safely(self, trainer: pl.Trainer) -> bool:
        """Rank 0 always reaches the broadcast: a storage that fails to answer costs this report, not a hang of
        the other ranks (they wait in the broadcast) or the trial."""
        try:
            return self._report(trainer)
        except Exception as error:  # noqa: BLE001 - any storage or driver error; the trial trains on
            log.warning("trial %d: could not report to the study (%s); not pruned here", self.trial_number, error)
            return False

    def _report(self, trainer: pl.Trainer) -> bool:
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            log.warning("trial %d: %s was not logged at this validation; not reported", self.trial_number, self.metric)
            return False
        trial = self.trial()
        trial.report(float(value), step=trainer.current_epoch)
        prune = trial.should_prune()
        if prune:
            epoch = trainer.current_epoch
            log.info("trial %d pruned at epoch %d (%s %.4f)", self.trial_number, epoch, self.metric, value)
        return prune

    def trial(self) -> optuna.Trial:
        """The running trial, opened once: the study with this search's pruner, the trial by its number."""
        if self._trial is None:
            storage = open_storage(os.environ[STUDY_STORAGE_ENV])
            study = optuna.load_study(
                study_name=self.study_name,
                storage=storage,
                pruner=build_pruner(self.pruner["name"], self.pruner),
            )
            study_id = storage.get_study_id_from_name(self.study_name)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.trial_number)
            self._trial = optuna.Trial(study, trial_id)
        return self._trial
