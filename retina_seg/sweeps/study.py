"""A search's Optuna study: its settings checked before anything is launched, the study created or continued,
the trials of dead jobs failed and retried, how many trials are left, and ``study.json`` (docs/search.md)."""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from optuna.trial import FrozenTrial, TrialState

from ..config import ConfigError
from ..records.objective import MODES, VALIDATION_METRICS, VALIDATION_ONLY
from ..records.study_record import STUDY_JOURNAL, STUDY_JSON, is_database_url, masked_storage, study_json_payload
from ..tracking.optuna_study import build_pruner, open_storage
from ..utils.atomic import write_json_atomic
from ..utils.folder_lock import folder_in_use
from .search_space import SearchSpace, as_json

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "random", "gp", "qmc")
DIRECTIONS = {"max": "maximize", "min": "minimize"}
# Trial user attributes: the worker that runs it; on a retry, the trial it repeats, the first trial of its chain
# and its attempt.
WORKER, REPEATS, RETRY_OF, ATTEMPT = "worker", "repeats", "retry_of", "attempt"
# Study user attributes: what a continued study must still be.
SPACE_ATTR, METRIC_ATTR = "search_space", "optimized_metric"


@dataclass(frozen=True)
class SearchSettings:
    """Everything a worker needs to run trials, in plain values (it travels pickled to every worker job)."""

    storage: str
    study_name: str
    direction: str
    metric: str
    n_trials: int
    n_parallel: int
    sampler: str
    seed: int | None
    n_startup_trials: int | None
    pruner: dict[str, Any]
    max_retries: int
    sweep_dir: str
    space: SearchSpace = field(default_factory=dict)

    @property
    def storage_url(self) -> str:
        """The storage with its ``${oc.env:...}`` resolved, only where it is opened: the settings keep it as
        written, as they travel pickled (submitit writes them to disk) and a password must not."""
        return str(OmegaConf.create({"storage": self.storage}).storage)


def search_settings(sweeper: DictConfig, master: DictConfig, space: SearchSpace) -> SearchSettings:
    """The sweeper's settings (``hydra.sweeper``) and the objective (``optimized_metric``/``optimized_mode``),
    checked; ConfigError naming the first key that is wrong."""
    sweep_dir = Path(str(master.hydra.sweep.dir)).resolve()
    metric, mode = master.get("optimized_metric"), master.get("optimized_mode")
    if metric not in VALIDATION_METRICS:
        raise ConfigError(f"optimized_metric={metric}: a validation metric ({VALIDATION_ONLY})")
    if mode not in MODES:
        raise ConfigError(f"optimized_mode={mode}: one of {list(MODES)}")
    for key, least in (("n_trials", 1), ("n_parallel", 1), ("max_retries", 0)):
        if not isinstance(sweeper[key], int) or sweeper[key] < least:
            raise ConfigError(f"hydra.sweeper.{key}={sweeper[key]}: an integer, at least {least}")
    startup = sweeper.sampler.n_startup_trials
    if startup is not None and startup < 0:
        raise ConfigError(f"hydra.sweeper.sampler.n_startup_trials={startup}: at least 0, or null")
    sampler, pruner = sweeper.sampler.name, OmegaConf.to_container(sweeper.pruner)
    if sampler not in SAMPLERS:
        raise ConfigError(f"hydra.sweeper.sampler.name={sampler}: one of {list(SAMPLERS)}")
    try:
        build_pruner(pruner["name"], pruner)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"hydra.sweeper.pruner.name={pruner['name']}: {error}") from error
    return SearchSettings(
        storage=_storage_as_kept(sweeper) or str(sweep_dir / STUDY_JOURNAL),
        study_name=sweeper.study_name or sweep_dir.name,
        direction=DIRECTIONS[mode],
        metric=metric,
        n_trials=sweeper.n_trials,
        n_parallel=sweeper.n_parallel,
        sampler=sampler,
        seed=sweeper.sampler.seed,
        n_startup_trials=sweeper.sampler.n_startup_trials,
        pruner=pruner,
        max_retries=sweeper.max_retries,
        sweep_dir=str(sweep_dir),
        space=space,
    )


def _storage_as_kept(sweeper: DictConfig) -> str | None:
    """A database URL as written (its password stays an unresolved ``${oc.env:...}``); a journal file's path,
    which holds no secret, resolved and made absolute so every worker and the report find the same file."""
    written = _written(sweeper, "storage")
    if not written:
        return None
    _refuse_written_password(written)
    try:
        resolved = str(sweeper.storage)
    except OmegaConfBaseException as error:
        raise ConfigError(f"hydra.sweeper.storage: {error}") from error
    return written if is_database_url(resolved) else str(Path(resolved).resolve())


def _written(config: DictConfig, key: str) -> Any:
    """The value of ``key`` as written, its interpolations unresolved."""
    return OmegaConf.to_container(config, resolve=False)[key]


def _refuse_written_password(written: str) -> None:
    """A storage URL's password must come from the environment (``${oc.env:VAR}``): Hydra writes the sweeper's
    settings, as written, into every run folder's ``.hydra/hydra.yaml``."""
    if not is_database_url(written):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(written).password
    except ArgumentError as error:
        raise ConfigError(f"hydra.sweeper.storage={masked_storage(written)}: not a database URL ({error})") from error
    if password is not None and "${" not in str(password):
        raise ConfigError(
            "hydra.sweeper.storage holds a password as written; Hydra would write it into every run folder. "
            "Write it as ${oc.env:VARIABLE} and set that variable"
        )


def sampler_of(settings: SearchSettings, worker: int) -> optuna.samplers.BaseSampler:
    """The sampler of one worker: seeded with ``seed + worker``, so that parallel workers do not propose the same
    points; QMC keeps the one seed, since its workers share one sequence through the study."""
    seed = settings.seed if settings.seed is None or settings.sampler == "qmc" else settings.seed + worker
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = {} if settings.n_startup_trials is None else {"n_startup_trials": settings.n_startup_trials}
    if settings.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, **startup)
    if settings.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, **startup)


def load_study(settings: SearchSettings, worker: int = 0) -> optuna.Study:
    """The study, created when new; ConfigError when its storage cannot be opened or it exists with another
    search space, objective or direction."""
    try:
        storage = open_storage(settings.storage_url)
        study = optuna.create_study(
            storage=storage,
            study_name=settings.study_name,
            direction=settings.direction,
            sampler=sampler_of(settings, worker),
            pruner=build_pruner(settings.pruner["name"], settings.pruner),  # TPE samples per Hyperband bracket
            load_if_exists=True,
        )
    except Exception as error:  # any driver's or file system's refusal: the storage cannot be used
        raise ConfigError(
            f"hydra.sweeper.storage={masked_storage(settings.storage)}: cannot be opened "
            f"({type(error).__name__}: {error})"
        ) from error
    _refuse_another_study(study, settings)
    return study


def _refuse_another_study(study: optuna.Study, settings: SearchSettings) -> None:
    expected = {SPACE_ATTR: as_json(settings.space), METRIC_ATTR: settings.metric}
    recorded = {key: study.user_attrs.get(key) for key in expected}
    if recorded == {key: None for key in expected} and not study.trials:
        for key, value in expected.items():
            study.set_user_attr(key, value)
        return
    what = {SPACE_ATTR: "search space", METRIC_ATTR: "optimized_metric"}
    for key, value in expected.items():
        if recorded[key] != value:
            raise ConfigError(
                f"study {settings.study_name!r} in {masked_storage(settings.storage)} exists with another {what[key]} "
                f"({recorded[key]}, this search's: {value}); choose another hydra.sweeper.study_name"
            )
    if study.direction.name.lower() != settings.direction:
        raise ConfigError(
            f"study {settings.study_name!r} exists with direction {study.direction.name.lower()}, this search's is "
            f"{settings.direction} (optimized_mode); choose another hydra.sweeper.study_name"
        )


def counted_trials(trials: list[FrozenTrial]) -> int:
    """Trials finished (complete, pruned), in flight (running), or failed for good (no retry repeats it). A
    waiting trial (an enqueued retry) is not counted: it stands for a failed one, and a worker's ask takes it."""
    repeated = {t.user_attrs.get(REPEATS) for t in trials}
    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        or (t.state == TrialState.FAIL and t.number not in repeated)
        for t in trials
    )


def trials_left(study: optuna.Study, n_trials: int) -> int:
    return max(0, n_trials - counted_trials(study.get_trials(deepcopy=False)))


def fail_stale_trials(study: optuna.Study, max_retries: int, sweep_dir: Path) -> list[int]:
    """Fail every running trial whose run folder no live process holds, and enqueue a retry with its values while
    its chain has retries left; returns the failed trials' numbers. A trial whose folder is held is left to its
    worker: a worker of an earlier launch may outlive the sweeper that launched it (a SLURM array keeps running
    when the submitting shell is gone)."""
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if folder_in_use(sweep_dir / str(trial.number)):
            log.warning("search: trial %d is still training (its run folder is held): left to its worker", trial.number)
        else:
            stale.append(trial)
    for trial in stale:
        attempt = int(trial.user_attrs.get(ATTEMPT, 0))
        study.tell(trial.number, state=TrialState.FAIL)
        if attempt < max_retries:
            first = trial.user_attrs.get(RETRY_OF, trial.number)
            study.enqueue_trial(trial.params, user_attrs={REPEATS: trial.number, RETRY_OF: first, ATTEMPT: attempt + 1})
        log.warning(
            "search: trial %d was running when its job died: failed%s",
            trial.number,
            f", retry {attempt + 1} of {max_retries} enqueued" if attempt < max_retries else ", no retry left",
        )
    return [trial.number for trial in stale]


def write_study_json(sweep_dir: Path, settings: SearchSettings) -> Path:
    """Where the report and optuna-dashboard find the study (records/study_record.py; the password masked)."""
    return write_json_atomic(
        Path(sweep_dir) / STUDY_JSON,
        study_json_payload(
            Path(sweep_dir),
            settings.storage_url,  # the password masked by study_json_payload
            settings.study_name,
            settings.direction,
            settings.metric,
            settings.n_trials,
            n_parallel=settings.n_parallel,
            sampler=settings.sampler,
            seed=settings.seed,
            pruner=settings.pruner,
            max_retries=settings.max_retries,
            search_space=sorted(settings.space),
        ),
    )
