"""Hydra's basic sweeper (grids, lists, ``hydra.sweeper.params``) plus ``skip_completed=true``: resume a sweep.

Selected by conf/train.yaml (``override hydra/sweeper: resumable``); the logic lives in
retina_seg.sweeps.resume, this module only makes it a plugin Hydra accepts.
"""

import sys
from dataclasses import dataclass
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
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
        """A sweep refused by skip_completed is bad input: exit 2 with its message alone (no traceback). It is
        refused before the basic sweeper writes multirun.yaml, and gives back the sweep folder's lock, so that
        the folder is left as it was."""
        from retina_seg.config import ConfigError
        from retina_seg.exit_codes import EXIT_BAD_INPUT
        from retina_seg.sweeps.resume import SkipCompletedLauncher
        from retina_seg.utils.folder_lock import unlock_folder

        try:
            if isinstance(self.launcher, SkipCompletedLauncher):
                self.launcher.refuse_other_runs(self._job_overrides(arguments))
            return super().sweep(arguments)
        except ConfigError as error:
            unlock_folder(self.config.hydra.sweep.dir)
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None

    def _job_overrides(self, arguments: list[str]) -> list[list[str]]:
        """Every job's overrides in launch order (job number = position), as the basic sweeper will batch them."""
        params = [*self._parse_config(), *arguments]
        parsed = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(params)
        return [job for batch in self.split_arguments(parsed, None) for job in batch]
