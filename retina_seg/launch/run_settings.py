"""Settings a run takes from the way it was launched: the sweep's epoch scale and its share of the CPU."""

import logging
import os

from omegaconf import DictConfig, open_dict

from ..config import ConfigError

log = logging.getLogger(__name__)


def scaled_epochs(epochs: int, scale: float) -> int:
    """Epochs after shortening: the same factor for every run of a sweep, never below one epoch."""
    return max(1, round(epochs * scale))


def apply_epoch_scale(cfg: DictConfig) -> None:
    """``epoch_scale`` multiplies ``trainer.max_epochs`` (so a long sweep runs in minutes on a CPU).

    The requested number is kept as ``requested_epochs`` in the config (and so in metrics.json), the
    effective one in ``trainer.max_epochs`` (the table's ``epochs``: what the run really trained).
    """
    scale = cfg.get("epoch_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0:
        raise ConfigError(f"invalid config: epoch_scale={scale!r} must be a number > 0")
    epochs = cfg.trainer.max_epochs
    if scale == 1 or isinstance(epochs, bool) or not isinstance(epochs, int):
        return  # nothing to scale; validate_config reports a bad max_epochs
    with open_dict(cfg):
        cfg.requested_epochs = epochs
        cfg.trainer.max_epochs = scaled_epochs(epochs, scale)
    log.info("epoch_scale=%s: %d epoch(s) instead of %d", scale, cfg.trainer.max_epochs, epochs)


def limit_threads(launcher_cfg: DictConfig | None) -> None:
    """Give the run the launcher's ``cpus_per_task`` torch threads (submitit launchers only).

    Parallel runs on one machine otherwise each start one thread per core and slow each other down.
    OMP_NUM_THREADS is set too, so Lightning's DDP processes keep the same number.
    """
    cpus = (launcher_cfg or {}).get("cpus_per_task")
    if not cpus:
        return
    import torch

    torch.set_num_threads(int(cpus))
    os.environ["OMP_NUM_THREADS"] = str(cpus)
    log.info("%d torch thread(s) (hydra.launcher.cpus_per_task)", cpus)
