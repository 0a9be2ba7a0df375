"""One training run, end to end: validate data, fit, pick the threshold on val, test the best checkpoint."""
import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.utilities import rank_zero_only
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..config import resolved_config
from ..sweeps.slurm_tasks import slurm_plugins
from ..tracking.job_identity import git_commit, job_id, node_name, rank_placement, rendezvous, slurm_job_id
from ..tracking.run_tracking import finish_tracking, start_tracking
from ..utils.atomic import write_atomic
from .budget import TimeBudget
from .callbacks import RunFolderWriter
from .metrics import summarize
from .run_folder import CHECKPOINTS, write_metrics

log = logging.getLogger(__name__)


def build_module(cfg: DictConfig, in_channels: int) -> pl.LightningModule:
    net_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    net_cfg["in_channels"] = in_channels
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    module = instantiate(cfg.module, net=instantiate(net_cfg), loss=instantiate(cfg.loss),
                         optimizer=instantiate(cfg.optimizer), scheduler=scheduler)
    augmentation = OmegaConf.to_container(cfg.data.augmentation, resolve=True)
    module.run_info = {"model": net_cfg, "loss": OmegaConf.to_container(cfg.loss, resolve=True),
                       "channels": cfg.data.get("channels", "rgb"),
                       "normalize": augmentation["normalize"], "eval_transforms": augmentation.get("eval") or {},
                       # The threshold is chosen on these probabilities: eval and predict repeat the same flips.
                       "flip_tta": bool(cfg.module.get("flip_tta", False))}
    return module


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    """Under SLURM: one task per device, and requeueing left to submitit (sweeps/slurm_tasks.py).
    `trainer.enable_progress_bar=false` also drops the callbacks group's progress bar."""
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a progress bar it was told to hide
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                       plugins=slurm_plugins(cfg) or None)


def run_record(cfg: DictConfig, hydra_job_id: str | None) -> dict[str, Any]:
    """What identifies the run in the sweep table, known before training starts."""
    return {"job_id": job_id(hydra_job_id), "slurm_job_id": slurm_job_id(), "slurm_node": node_name(),
            "epochs": cfg.trainer.max_epochs, "batch_size": cfg.data.batch_size,
            "learning_rate": cfg.optimizer.lr, "seed": cfg.seed, "git_commit": git_commit(),
            "config": resolved_config(cfg)}


def resume_path(cfg: DictConfig, output_dir: Path) -> str | None:
    """``resume=auto`` continues from this run folder's last.ckpt (a requeued or re-run job)."""
    if cfg.resume in (None, False, "none"):
        return None
    if cfg.resume == "auto":
        last = output_dir / CHECKPOINTS / "last.ckpt"
        return str(last) if last.exists() else None
    return str(cfg.resume)


def epochs_done(ckpt_path: str) -> int:
    """Epochs a checkpoint has finished (Lightning's own loop counter, valid mid-run and at the end)."""
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])


def store_threshold(ckpt_path: str, threshold: float) -> None:
    """Write the threshold chosen on validation into the best checkpoint, atomically."""
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    checkpoint.setdefault("retina_seg", {})["threshold"] = threshold
    write_atomic(ckpt_path, lambda tmp: torch.save(checkpoint, tmp))


def fit_and_test(cfg: DictConfig, output_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.setup("fit")  # bad data fails here, before any model is built
    module = build_module(cfg, datamodule.in_channels)
    # The training photographs' scale, stored in every checkpoint: prediction rescales new photographs to it.
    module.run_info["fov_diameter"] = datamodule.training_fov_diameter()
    trainer = build_trainer(cfg)
    writer = next((c for c in trainer.callbacks if isinstance(c, RunFolderWriter)), None)
    if writer is not None:
        writer.record = record
    budgeted = next((c for c in trainer.callbacks if isinstance(c, TimeBudget)), None)
    if budgeted is not None:
        record["epochs"], record["time_budget_s"] = None, budgeted.budget_s  # epochs: known when it is spent
    started = time.monotonic()
    ckpt = resume_path(cfg, output_dir)
    if ckpt:
        done = epochs_done(ckpt)
        log.info("Resuming from checkpoint %s: %d epoch(s) done, continuing at epoch %d", ckpt, done, done)
        record["resumed_from_epoch"] = done
    start_tracking(trainer, record)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)
    record["wall_time_s"] = round(time.monotonic() - started, 1)
    record["ranks"], record["rendezvous"] = rank_placement(), rendezvous()
    if budgeted is not None:  # the table's epochs: those the budget allowed, not the unreached max_epochs
        record["epochs"] = trainer.current_epoch
    best = best_checkpoint(trainer)
    results = _validate_and_choose_threshold(trainer, module, datamodule, best)
    if cfg.test:
        results.update(trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)[0])
    results["best_epoch"] = torch.load(best, map_location="cpu", weights_only=True)["epoch"] if best else None
    results["best_checkpoint"] = best
    finish_tracking(trainer, {**record, **results, "status": "completed"})
    return results


def best_checkpoint(trainer: pl.Trainer) -> str | None:
    """Path of the best-val_IoU checkpoint, or None when no checkpoint callback monitors it."""
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor == "val_IoU" and callback.best_model_path:
            return callback.best_model_path
    return None


def _validate_and_choose_threshold(trainer, module, datamodule, best: str | None) -> dict[str, Any]:
    """Validate the best checkpoint; choose the threshold on val; report val scores at that threshold."""
    val = trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False)[0]
    threshold = module.choose_threshold()
    if best and trainer.is_global_zero:
        store_threshold(best, threshold)
    trainer.strategy.barrier()
    return {"val_loss": val["val_loss"], "threshold": threshold, **summarize(module.val_metrics, threshold, "val")}


def train(cfg: DictConfig, output_dir: Path, hydra_job_id: str | None = None) -> dict[str, Any]:
    """Run training and leave a complete metrics.json; a failure is recorded as status "failed"."""
    record = run_record(cfg, hydra_job_id)
    try:
        results = fit_and_test(cfg, output_dir, record)
    except SystemExit:
        # submitit's preemption/timeout handler requeues the job, then exits: the run is not over, so
        # metrics.json keeps the "running" state of its last epoch until the requeued job resumes.
        raise
    except BaseException as error:
        if rank_zero_only.rank == 0:
            write_metrics(output_dir, {**record, "status": "failed", "error": f"{type(error).__name__}: {error}"})
        raise
    final = {**record, **{k: _plain(v) for k, v in results.items()}, "status": "completed"}
    if rank_zero_only.rank == 0:
        write_metrics(output_dir, final)
    return final


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, torch.Tensor) else value
