"""An Optuna search as a Hydra sweep (``retina-seg-train -m hydra/sweeper=optuna``; docs/search.md): everything is
checked before anything is launched, the study is created or continued, the trials of dead jobs are failed and
retried, and ``n_parallel`` workers (retina_seg/sweeps/trial_worker.py) are launched through the configured
launcher in one call, until the study has its ``n_trials``."""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..config import ConfigError
from .search_space import SearchSpace, every_choice, override_value, parameter_overrides, search_space
from .study import SearchSettings, fail_stale_trials, load_study, search_settings, trials_left, write_study_json
from .trial_worker import TrialWorker, pruning_override

log = logging.getLogger(__name__)

# Each worker job's own folder under the sweep folder: hidden, so it is never taken for a trial's run folder.
WORKER_SUBDIR = ".workers/{}"


class SearchStalled(RuntimeError):
    """A round of workers ended no trial: launching them again would not either."""


def prepare_search(
    master: DictConfig, hydra_context: HydraContext, arguments: list[str]
) -> tuple[SearchSettings, list[str], optuna.Study]:
    """The settings, the overrides every trial shares, and the study; ConfigError naming what is wrong, before
    anything is launched. A sweep override on the command line (``key=a,b``, ``key=interval(...)``) is a
    parameter of the search like those of ``hydra.sweeper.params``."""
    parsed = OverridesParser.create(config_loader=hydra_context.config_loader).parse_overrides(arguments)
    params = OmegaConf.to_container(master.hydra.sweeper.params) or {}
    sweeps = [o for o in parsed if o.is_sweep_override()]
    space = search_space({str(key): str(value) for key, value in params.items()}, sweeps)
    if not space:
        raise ConfigError("hydra.sweeper.params: no parameter to search (key: interval(...), choice(...), ...)")
    settings = search_settings(master.hydra.sweeper, master, space)
    refuse_multi_task_workers(master)
    # The sweep folder pinned: a ${now:...} in it resolves once, here, and not again in each worker job.
    shared = [
        *(o.input_line for o in parsed if not o.is_sweep_override()),
        f"hydra.sweep.dir={override_value(settings.sweep_dir)}",
    ]
    refuse_unknown_values(hydra_context, master, [*shared, pruning_override(settings, 0)], space)
    return settings, shared, load_study(settings)


def refuse_multi_task_workers(master: DictConfig) -> None:
    """A worker runs its trials one after another in its one process: a job of several tasks (a multi-node or
    one-task-per-device DDP run) would have every task ask the study for a trial of its own."""
    launcher = master.hydra.launcher
    for key in ("nodes", "tasks_per_node"):
        if int(launcher.get(key) or 1) > 1:
            raise ConfigError(
                f"hydra.launcher.{key}={launcher[key]}: a search's workers are one task each (its trials train in "
                "the worker's process); run several workers with hydra.sweeper.n_parallel instead"
            )


def refuse_unknown_values(
    hydra_context: HydraContext, master: DictConfig, shared: list[str], space: SearchSpace
) -> None:
    """Compose a trial's config at every choice and both ends of every range: a key or a group option that does not
    exist is refused now, not in the middle of the search."""
    for point in every_choice(space):
        overrides = parameter_overrides(point)
        try:
            hydra_context.config_loader.load_sweep_config(master, [*shared, *overrides])
        except (HydraException, OmegaConfBaseException) as error:
            raise ConfigError(f"search parameters {' '.join(overrides)}: {error}") from error


def run_search(
    master: DictConfig, hydra_context: HydraContext, task_function: Callable[[DictConfig], Any], arguments: list[str]
) -> list[Any]:
    """The search, round after round: fail and retry the trials of dead jobs, launch workers while trials are
    left. A second round happens only when a worker job died without its trial (no SLURM requeue)."""
    settings, shared, study = prepare_search(master, hydra_context, arguments)
    sweep_dir = Path(settings.sweep_dir)
    OmegaConf.save(master, sweep_dir / "multirun.yaml")
    write_study_json(sweep_dir, settings)
    worker = TrialWorker(task_function, settings, hydra_context, master, shared)
    returns: list[Any] = []
    ended_before = None
    while True:
        fail_stale_trials(study, settings.max_retries, sweep_dir)
        left = trials_left(study, settings.n_trials)
        ended = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
        if left == 0:
            log.info("search: study %r has its %d trial(s); nothing to launch", settings.study_name, settings.n_trials)
            break
        if ended == ended_before:
            raise SearchStalled(f"search: a round of workers ended no trial; see their logs in {sweep_dir}/.workers")
        ended_before = ended
        returns.extend(launch_workers(master, hydra_context, worker, min(settings.n_parallel, left), left))
    log_summary(study)
    return returns


def launch_workers(
    master: DictConfig, hydra_context: HydraContext, worker: TrialWorker, count: int, left: int
) -> list[Any]:
    """``count`` worker jobs in one launcher call (one SLURM job array); a worker job that failed is logged, its
    trial is failed and retried by the next round."""
    log.info("search: %d trial(s) left; launching %d worker(s)", left, count)
    launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=worker, config=master)
    overrides = [[f"hydra.sweep.subdir={WORKER_SUBDIR.format(n)}"] for n in range(count)]
    try:
        returns = list(launcher.launch(overrides, initial_job_idx=0))
    except Exception:  # a job array that failed as a whole: its running trials are failed on the next round
        log.exception("search: the launcher failed")
        return []
    for number, returned in enumerate(returns):
        if returned.status != JobStatus.COMPLETED:
            log.error("search worker %d failed: %s", number, returned._return_value)
    return returns


def log_summary(study: optuna.Study) -> None:
    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = f"; best: trial {study.best_trial.number} ({study.best_value:.4f}) {study.best_params}" if complete else ""
    log.info("search: study %r: %s%s", study.study_name, counts, best)
