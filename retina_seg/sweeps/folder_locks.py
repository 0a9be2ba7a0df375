"""Hydra callback: the run folder (single run) or the sweep folder (multirun) is locked before Hydra writes
anything into it, so a second launch into the same folder stops at once and changes nothing there."""

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ..launch.job_identity import job_id
from ..utils.folder_lock import FolderLockedError, lock_folder, unlock_folder


def _is_first_rank() -> bool:
    """Lightning's DDP workers re-run the entrypoint into the folder their rank 0 already holds."""
    from lightning.pytorch.utilities import rank_zero_only

    return rank_zero_only.rank == 0


def _lock_or_exit(folder: str) -> None:
    if not _is_first_rank():
        return
    try:
        lock_folder(folder, job_id())
    except FolderLockedError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


class FolderLockCallback(Callback):
    """Holds ``hydra.run.dir`` for a run's lifetime, ``hydra.sweep.dir`` for a sweep's."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _lock_or_exit(config.hydra.run.dir)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        unlock_folder(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _lock_or_exit(config.hydra.sweep.dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        unlock_folder(config.hydra.sweep.dir)
