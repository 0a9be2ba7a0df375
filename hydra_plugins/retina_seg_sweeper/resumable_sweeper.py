"""Hydra's basic sweeper (grids, lists, ``hydra.sweeper.params``) plus ``skip_completed=true``: resume a sweep.

Selected by conf/train.yaml (``override hydra/sweeper: resumable``); the logic lives in
retina_seg.sweeps.resume, this module only makes it a plugin Hydra accepts.
"""

import sys
from dataclasses import dataclass
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class ResumableSweeperConf:
    _target_: str = "hydra_plugins.retina_seg_sweeper.resumable_sweeper.ResumableSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="resumable", node=ResumableSweeperConf, provider="retina_seg")


class ResumableSweeper(BasicSweeper):
    """With ``skip_completed=true`` in the sweep's config, completed runs are skipped and left untouched."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        if config.get("skip_completed"):
            from retina_seg.sweeps.resume import SkipCompletedLauncher

            self.launcher = SkipCompletedLauncher(self.launcher, hydra_context.config_loader, config)

    def sweep(self, arguments: list[str]) -> Any:
        """A sweep refused by skip_completed is bad input: exit 2 with its message alone (no traceback)."""
        from retina_seg.config import ConfigError
        from retina_seg.exit_codes import EXIT_BAD_INPUT

        try:
            return super().sweep(arguments)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None
