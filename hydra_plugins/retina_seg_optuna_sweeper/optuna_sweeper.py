"""An Optuna search as a Hydra sweeper: ``retina-seg-train -m hydra/sweeper=optuna`` (docs/search.md).

The logic lives in retina_seg.sweeps.search; this module only makes it a plugin Hydra accepts, with the
settings' structured config (their defaults and types).
"""

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class SamplerConf:
    # tpe, random, gp or qmc; worker n is seeded with seed + n (qmc: seed), null: unseeded.
    name: str = "tpe"
    seed: int | None = None
    # tpe, gp: trials drawn at random before the model guides the draws (null: Optuna's default, 10).
    n_startup_trials: int | None = None


@dataclass
class PrunerConf:
    # none, median, successive_halving, hyperband or threshold; each takes its own settings of those below.
    name: str = "none"
    n_startup_trials: int = 5  # median: trials that are never pruned, before it compares
    n_warmup_steps: int = 0  # median, threshold: epochs of each trial that are never pruned
    min_resource: int = 1  # successive_halving, hyperband: epochs before the first decision
    max_resource: Any = "auto"  # hyperband: epochs of a full trial ("auto": learnt from the first trial)
    reduction_factor: int = 3  # successive_halving, hyperband
    lower: float | None = None  # threshold: a trial whose objective falls below it (or rises above upper) stops
    upper: float | None = None


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.retina_seg_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    # key -> Hydra's override grammar: interval(1e-4, 1e-2), tag(log, interval(...)), choice(a, b), range(1, 4), a,b
    params: dict[str, str] = field(default_factory=dict)
    n_trials: int = 20
    n_parallel: int = 2
    sampler: SamplerConf = field(default_factory=SamplerConf)
    pruner: PrunerConf = field(default_factory=PrunerConf)
    # null: an Optuna journal file, <sweep dir>/optuna.journal; else a journal file path or a database URL (a
    # password as ${oc.env:VARIABLE}, never written out).
    storage: str | None = None
    # null: the sweep folder's name.
    study_name: str | None = None
    # Retries of a trial whose job died (found running at the next start), with the same values.
    max_retries: int = 1


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="retina_seg")


class OptunaSweeper(Sweeper):
    """The settings are read from ``hydra.sweeper`` in the sweep, where their raw form can be checked."""

    def __init__(self, **settings: Any) -> None:
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def sweep(self, arguments: list[str]) -> Any:
        """Bad input exits 2 with its message alone, before anything is launched, and gives back the sweep
        folder's lock (and the folder, when that left it empty); a search whose workers end no trial exits 1."""
        from retina_seg.config import ConfigError
        from retina_seg.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED
        from retina_seg.sweeps.search import SearchStalled, run_search
        from retina_seg.utils.folder_lock import unlock_folder

        try:
            return run_search(self.config, self.hydra_context, self.task_function, arguments)
        except ConfigError as error:
            unlock_folder(self.config.hydra.sweep.dir)
            with contextlib.suppress(OSError):
                Path(str(self.config.hydra.sweep.dir)).rmdir()  # only when empty
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None
        except SearchStalled as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None
