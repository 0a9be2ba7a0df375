"""A search's worker job: it asks the study for a trial, runs it as an ordinary run folder, tells the study how it
ended, and asks again, until the study has its trials (docs/search.md: why workers, not batches).

The sweeper launches ``n_parallel`` workers in one call of the configured launcher (one SLURM job array, local
processes, or one after another in process), with a ``TrialWorker`` as their task function. Asking is done under
a lock on a file in the sweep folder, so that the count of trials and the ask are one step for all workers: no more
than ``n_trials`` trials are ever asked for. A worker that SLURM requeues (a lost node, a preemption) starts again
with the same number, finds the trial the study records as running on it, and continues that trial in its run
folder, from the run's last checkpoint: the trial counts once.
"""

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, run_job
from hydra.types import HydraContext
from omegaconf import DictConfig, open_dict
from optuna.trial import TrialState

from ..launch.job_identity import SEARCH_TRIAL_ENV
from ..records.run_folder import RunStatus, metrics_or_none
from ..records.study_record import STUDY_STORAGE_ENV
from ..utils.folder_lock import exclusive
from .search_space import override_value, parameter_overrides
from .study import WORKER, SearchSettings, counted_trials, load_study

log = logging.getLogger(__name__)

# The file whose flock a worker holds while it counts the study's trials and asks for the next one.
ASK_LOCK = ".optuna-ask"
PRUNING_CALLBACK = "retina_seg.training.pruning.OptunaPruning"


@dataclass(frozen=True)
class TrialToRun:
    number: int
    params: dict[str, Any]


class TrialWorker:
    """The task function the sweeper hands its launcher: one call is one worker job (``hydra.job.num`` is the
    worker's number). It holds plain values and Hydra's context only, so submitit can pickle it."""

    def __init__(
        self,
        task_function: Callable[[DictConfig], Any],
        settings: SearchSettings,
        hydra_context: HydraContext,
        master_config: DictConfig,
        base_overrides: list[str],
    ):
        self.task_function, self.settings, self.hydra_context = task_function, settings, hydra_context
        self.master_config, self.base_overrides = master_config, base_overrides

    def __call__(self, worker_config: DictConfig) -> list[tuple[int, str]]:
        """Run trials until the study has its ``n_trials``; returns (trial number, state) of each one run here."""
        worker = int(HydraConfig.get().job.num)
        os.environ[STUDY_STORAGE_ENV] = self.settings.storage_url  # the trial's pruning callback reads it
        study = load_study(self.settings, worker)
        done = []
        while (trial := self.next_trial(study, worker)) is not None:
            done.append((trial.number, self.run_trial(study, trial).name))
        log.info("search worker %d: no trial left; it ran %s", worker, done or "none")
        return done

    def next_trial(self, study: optuna.Study, worker: int) -> TrialToRun | None:
        """The trial this worker was running when its job was requeued, else a new one (an enqueued retry first),
        or None when the study has its ``n_trials``."""
        with exclusive(Path(self.settings.sweep_dir) / ASK_LOCK):
            trials = study.get_trials(deepcopy=False)
            mine = [t for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get(WORKER) == worker]
            if mine:
                log.info("search worker %d: continuing trial %d, begun before its requeue", worker, mine[0].number)
                return TrialToRun(mine[0].number, dict(mine[0].params))
            if counted_trials(trials) >= self.settings.n_trials:
                return None
            trial = study.ask(fixed_distributions=self.settings.space)
            trial.set_user_attr(WORKER, worker)
            return TrialToRun(trial.number, dict(trial.params))

    def run_trial(self, study: optuna.Study, trial: TrialToRun) -> TrialState:
        """Run the trial as a job of the sweep (folder ``<sweep dir>/<hydra.sweep.subdir>``, job number = trial
        number) and tell the study how it ended."""
        values = parameter_overrides(trial.params)
        overrides = [*self.base_overrides, *values, pruning_override(self.settings, trial.number)]
        log.info("search: trial %d: %s", trial.number, " ".join(values))
        config = self.hydra_context.config_loader.load_sweep_config(self.master_config, overrides)
        with open_dict(config):
            config.hydra.job.id = trial.number
            config.hydra.job.num = trial.number
        os.environ[SEARCH_TRIAL_ENV] = str(trial.number)  # the run's job id names its trial (launch/job_identity.py)
        try:
            returned = run_job(
                hydra_context=self.hydra_context,
                task_function=self.task_function,
                config=config,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
        finally:
            del os.environ[SEARCH_TRIAL_ENV]
        state, value = outcome(returned)
        study.tell(trial.number, value, state=state)
        log.info("search: trial %d %s%s", trial.number, state.name.lower(), "" if value is None else f": {value:.4f}")
        return state


def pruning_override(settings: SearchSettings, number: int) -> str:
    """The trial's pruning callback, added to its callbacks (the storage reaches it through STUDY_STORAGE_ENV)."""
    callback = {
        "_target_": PRUNING_CALLBACK,
        "study_name": settings.study_name,
        "trial_number": number,
        "metric": settings.metric,
        "pruner": settings.pruner,
    }
    return f"+callbacks.optuna_pruning={override_value(callback)}"


def outcome(returned: JobReturn) -> tuple[TrialState, float | None]:
    """How a trial's run ended, as the study records it: pruned when its run folder says so, complete with the
    objective's value, else failed (the run raised, or gave no finite value)."""
    if returned.status != JobStatus.COMPLETED:
        log.error("search: the trial's run failed: %s", returned._return_value)
        return TrialState.FAIL, None
    record = metrics_or_none(returned.hydra_cfg.hydra.runtime.output_dir) or {}
    if record.get("status") == RunStatus.PRUNED:
        return TrialState.PRUNED, None
    value = returned.return_value
    if isinstance(value, int | float) and math.isfinite(value):
        return TrialState.COMPLETE, float(value)
    log.error("search: the trial's run gave no finite objective value (%r)", value)
    return TrialState.FAIL, None
