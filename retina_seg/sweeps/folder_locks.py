"""Hydra callback: the run folder (single run) or the sweep folder (multirun) is locked before Hydra writes
anything into it, so a second launch into the same folder stops at once and changes nothing there; a rerun into
a run's folder with other values than the run's is refused there too, before Hydra rewrites its ``.hydra/``."""

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from ..config import ConfigError
from ..exit_codes import EXIT_BAD_INPUT, fail
from ..launch.job_identity import job_id
from ..records.run_folder import CHECKPOINTS
from ..records.run_overrides import refuse_changed_rerun
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


def _holds_checkpoints(config: DictConfig) -> bool:
    """Whether the run would resume: its folder (paths.output_dir, Hydra's run folder unless moved) holds one."""
    try:
        output_dir = Path(config.paths.output_dir)
    except OmegaConfBaseException:  # ${hydra:runtime.output_dir}, set once Hydra starts the job
        output_dir = Path(config.hydra.run.dir)
    return any((output_dir / CHECKPOINTS).glob("*.ckpt"))


class FolderLockCallback(Callback):
    """Holds ``hydra.run.dir`` for a run's lifetime, ``hydra.sweep.dir`` for a sweep's."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _lock_or_exit(config.hydra.run.dir)
        if _is_first_rank() and config.get("resume") == "auto" and _holds_checkpoints(config):
            try:
                refuse_changed_rerun(Path(config.hydra.run.dir), list(config.hydra.overrides.task), config)
            except ConfigError as error:
                unlock_folder(config.hydra.run.dir)
                fail("retina-seg-train", error, EXIT_BAD_INPUT)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        unlock_folder(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _lock_or_exit(config.hydra.sweep.dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        unlock_folder(config.hydra.sweep.dir)
