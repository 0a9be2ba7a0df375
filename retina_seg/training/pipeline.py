"""One training run, end to end: validate data, fit, pick the threshold on val, test the best checkpoint."""

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from ..config import ConfigError, resolved_config
from ..data.colour import ColourStandard
from ..launch.job_identity import git_commit, job_id, node_name, rank_placement, rendezvous, slurm_job_id
from ..launch.run_settings import limit_threads
from ..launch.slurm_job import slurm_plugins
from ..records.checkpoint import (
    AtomicCheckpointIO,
    RunInfo,
    epochs_done,
    load_checkpoint_file,
    resume_point,
    store_threshold,
)
from ..records.objective import OBJECTIVE_KEY, objective_of
from ..records.protocols import protocols_of_the_test_loop
from ..records.run_folder import (
    CHECKPOINTS,
    METRICS_JSON,
    RunStatus,
    metrics_or_none,
    recorded_job_id,
    reserve_record_space,
    write_final_metrics,
    write_metrics,
    write_test_images,
)
from ..records.run_overrides import changes_on_resume
from ..scoring.pooled import summarize
from ..tracking.run_tracking import finish_tracking, start_tracking
from ..utils.atomic import remove_partial_writes, write_text_atomic
from ..utils.disk_space import DiskFullError, no_space_error
from ..utils.folder_lock import lock_folder, unlock_folder
from .budget import TimeBudget
from .callbacks import RunFolderWriter
from .pruning import OptunaPruning
from .run_config import settle_config

log = logging.getLogger(__name__)


def build_module(
    cfg: DictConfig,
    in_channels: int,
    fov_diameter: float | None = None,
    source_names: Sequence[str] = (),
    colour: ColourStandard | None = None,
) -> pl.LightningModule:
    """The LightningModule with the checkpoint payload it will save (its threshold is settled on validation;
    ``fov_diameter``: the training photographs' scale, None where nothing will be predicted at another;
    ``source_names``: the sets trained on together, each also scored on its own; ``colour``: the colour standard
    the photographs were mapped to, which eval and predict repeat)."""
    net_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    net_cfg["in_channels"] = in_channels
    augmentation = OmegaConf.to_container(cfg.data.augmentation, resolve=True)
    run_info = RunInfo(
        model=net_cfg,
        threshold=0.5,
        loss=OmegaConf.to_container(cfg.loss, resolve=True),
        channels=cfg.data.get("channels", "rgb"),
        normalize=augmentation["normalize"],
        eval_transforms=augmentation.get("eval") or {},
        # The threshold is chosen on these probabilities: eval and predict repeat the same flips.
        flip_tta=bool(cfg.module.get("flip_tta", False)),
        # The training photographs' scale: prediction rescales new photographs to it.
        fov_diameter=fov_diameter,
        mask_rule=mask_rule(cfg),
        colour=colour.to_payload() if colour is not None else None,
    )
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    module_factory = instantiate(cfg.module, _partial_=True)  # called directly: Hydra would copy run_info
    return module_factory(
        net=instantiate(net_cfg),
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler,
        run_info=run_info,
        per_image_protocols=protocols_of_the_test_loop(run_info.mask_rule),
        source_names=source_names,
    )


def mask_rule(cfg: DictConfig) -> str:
    """How the run's vessel masks are binarised (the synthetic set's are exact: "half" keeps them as they are);
    sets trained on together must agree, so that one protocol scores them all."""
    source = cfg.data.get("source", {})
    sources = source.get("sources") or {"": source}
    rules = {name: each.get("mask_rule", "half") for name, each in sources.items()}
    if len(set(rules.values())) > 1:
        listing = ", ".join(f"data.source.sources.{name}.mask_rule={rule}" for name, rule in rules.items())
        raise ConfigError(f"the sets trained on together binarise their masks differently: {listing}")
    return next(iter(rules.values()))


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    """Under SLURM: one task per device, and requeueing left to submitit (launch/slurm_job.py).
    `trainer.enable_progress_bar=false` also drops the callbacks group's progress bar."""
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a progress bar it was told to hide
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    return instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[*slurm_plugins(cfg), AtomicCheckpointIO()]
    )


def run_record(cfg: DictConfig, run_job_id: str) -> dict[str, Any]:
    """What identifies the run in the sweep table, known before training starts."""
    return {
        "job_id": run_job_id,
        "slurm_job_id": slurm_job_id(),
        "slurm_node": node_name(),
        "epochs": cfg.trainer.max_epochs,
        "batch_size": cfg.data.batch_size,
        "learning_rate": cfg.optimizer.lr,
        "seed": cfg.seed,
        "mask_rule": mask_rule(cfg),
        "git_commit": git_commit(),
        "config": resolved_config(cfg),
    }


def resume_from(cfg: DictConfig, output_dir: Path) -> tuple[str, int] | None:
    """(checkpoint, epochs done) to continue from. ``resume=auto``: the run folder's newest readable checkpoint
    (last.ckpt, or the newest other one when last.ckpt is damaged); a path: that checkpoint."""
    if cfg.resume in (None, False, "none"):
        return None
    if cfg.resume == "auto":
        found = resume_point(output_dir / CHECKPOINTS)
        return (str(found[0]), found[1]) if found else None
    return str(cfg.resume), epochs_done(cfg.resume)


def fit_and_test(
    cfg: DictConfig, record: dict[str, Any], resume: tuple[str, int] | None, output_dir: Path
) -> dict[str, Any]:
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.setup("fit")  # bad data fails here, before any model is built
    module = build_module(
        cfg,
        datamodule.in_channels,
        datamodule.training_fov_diameter(),
        source_names=datamodule.source_names,
        colour=datamodule.colour_standard,
    )
    if datamodule.source_names:  # the sets trained on together, each with its share of the training draws
        record["data_sources"] = {name: datamodule.source.weights[name] for name in datamodule.source_names}
    trainer = build_trainer(cfg)
    writer = next((c for c in trainer.callbacks if isinstance(c, RunFolderWriter)), None)
    if writer is not None:
        writer.record = record
    budgeted = next((c for c in trainer.callbacks if isinstance(c, TimeBudget)), None)
    if budgeted is not None:
        record["epochs"], record["time_budget_s"] = None, budgeted.budget_s  # epochs: known when it is spent
    started = time.monotonic()
    ckpt, done = resume or (None, 0)
    if ckpt:
        log.info("Resuming from checkpoint %s: %d epoch(s) done, continuing at epoch %d", ckpt, done, done)
        record["resumed_from_epoch"] = done
    start_tracking(trainer, record)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)
    # The training time of every process that led here (the writer carries it from checkpoint to checkpoint).
    record["wall_time_s"] = writer.wall_time_s() if writer else round(time.monotonic() - started, 1)
    record["epochs_done"] = trainer.current_epoch
    record["ranks"], record["rendezvous"] = rank_placement(), rendezvous()
    if budgeted is not None:  # the table's epochs: those the budget allowed, not the unreached max_epochs
        record["epochs"] = trainer.current_epoch
    best = best_checkpoint(trainer)
    results = _validate_and_choose_threshold(trainer, module, datamodule, best)
    results.update(_pruning_outcome(trainer))
    if cfg.test and results["status"] == RunStatus.COMPLETED:
        results.update(trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)[0])
        if trainer.is_global_zero:
            write_test_images(output_dir, module.test_image_scores([s.name for s in datamodule.splits.test]))
    results["best_epoch"] = load_checkpoint_file(best)["epoch"] if best else None
    results["best_checkpoint"] = best
    finish_tracking(trainer, {**record, **results})
    return results


def _pruning_outcome(trainer: pl.Trainer) -> dict[str, Any]:
    """``status`` pruned and the epoch when a search's pruner stopped the run, else completed. A pruned run is not
    tested: its trial is over, and no search reads a test score."""
    pruning = next((c for c in trainer.callbacks if isinstance(c, OptunaPruning)), None)
    if pruning is None or pruning.pruned_at_epoch is None:
        return {"status": RunStatus.COMPLETED}
    return {"status": RunStatus.PRUNED, "pruned_at_epoch": pruning.pruned_at_epoch}


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
    return {
        "val_loss": val["val_loss"],
        "threshold": threshold,
        **module.source_thresholds(),
        **summarize(module.val_metrics, threshold, "val"),
        **module.source_scores("val", threshold),
    }


def claim_run_folder(output_dir: Path, hydra_job_id: str | None) -> str:
    """Lock the run folder for this process (rank 0: other ranks share it) and remove what a killed writer
    left half-written; returns the run's job id, the one its folder already records when it is resumed."""
    run_job_id = job_id(hydra_job_id)
    if rank_zero_only.rank == 0:
        lock_folder(output_dir, run_job_id)
        remove_partial_writes(output_dir, output_dir / CHECKPOINTS)
    return run_job_id


def prepare_config(cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    """Settle the values the run uses (run_config.settle_config), give the run the launcher's threads, and
    make ``.hydra/config.yaml`` say the settled values: Hydra wrote it before any of this."""
    settle_config(cfg, hydra_cfg.overrides.task)
    limit_threads(hydra_cfg.launcher)
    if hydra_cfg.output_subdir is not None and rank_zero_only.rank == 0:
        hydra_dir = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir
        write_text_atomic(hydra_dir / "config.yaml", OmegaConf.to_yaml(cfg))


def train_job(cfg: DictConfig, hydra_cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """The entrypoint's job: own the run folder, settle the config, train. A rejected config is recorded as
    ``status: failed`` with the error, so the report (and a sweep's table) says why the run did not train."""
    hydra_job_id = hydra_cfg.job.get("id")
    run_job_id = claim_run_folder(output_dir, hydra_job_id)
    try:
        try:
            prepare_config(cfg, hydra_cfg)
        except ConfigError as error:
            if rank_zero_only.rank == 0 and not (output_dir / METRICS_JSON).exists():  # never over an earlier run's
                write_metrics(
                    output_dir, {"job_id": run_job_id, "status": RunStatus.FAILED, "error": f"ConfigError: {error}"}
                )
            raise
        return train(cfg, output_dir, hydra_job_id)
    finally:
        unlock_folder(output_dir)


def train(cfg: DictConfig, output_dir: Path, hydra_job_id: str | None = None) -> dict[str, Any]:
    """Run training and leave a complete metrics.json; a failure is recorded as status "failed"."""
    run_job_id = claim_run_folder(output_dir, hydra_job_id)
    try:
        return _train_locked(cfg, output_dir, run_job_id)
    finally:
        unlock_folder(output_dir)


def _train_locked(cfg: DictConfig, output_dir: Path, run_job_id: str) -> dict[str, Any]:
    """Train with space set aside for the final record, so that a full disk is recorded too."""
    record = run_record(cfg, run_job_id)
    try:
        if rank_zero_only.rank == 0:
            reserve_record_space(output_dir)
        resume = resume_from(cfg, output_dir)
        if resume:
            _record_resumption(record, output_dir, run_job_id)
        results = fit_and_test(cfg, record, resume, output_dir)
    except SystemExit:
        # submitit's preemption/timeout handler requeues the job, then exits: the run is not over, so
        # metrics.json keeps the "running" state of its last epoch until the requeued job resumes.
        raise
    except BaseException as error:
        named = _disk_full_named(error, output_dir)
        if rank_zero_only.rank == 0:
            failure = named or error
            write_final_metrics(
                output_dir, {**record, "status": RunStatus.FAILED, "error": f"{type(failure).__name__}: {failure}"}
            )
        if named is not None and named is not error:
            raise named from error
        raise
    final = {**record, **{k: _plain(v) for k, v in results.items()}}
    final[OBJECTIVE_KEY] = objective_of(cfg).as_record(final)
    if rank_zero_only.rank == 0:
        write_final_metrics(output_dir, final)
    return final


def _disk_full_named(error: BaseException, output_dir: Path) -> DiskFullError | None:
    """The full disk behind ``error`` as a DiskFullError: itself when it is one; else (a logger's own file
    write) one naming the file that error names, or the run folder; None when the disk is not full."""
    if isinstance(error, DiskFullError):
        return error
    no_space = no_space_error(error)
    return None if no_space is None else DiskFullError(no_space.filename or output_dir)


def _record_resumption(record: dict[str, Any], output_dir: Path, run_job_id: str) -> None:
    """A resumed run keeps its identity (a single run's id is the pid of the process that began it) and records
    the values the rerun changed (those CHANGEABLE_ON_RESUME; any other change was refused before Hydra wrote)."""
    earlier = metrics_or_none(output_dir)
    record["job_id"] = recorded_job_id(output_dir) or run_job_id
    changes = changes_on_resume(earlier, record["config"])
    if changes:
        record["resumed_with_changes"] = changes
        log.info("Resumed with changes: %s", ", ".join(f"{key}: {old} -> {new}" for key, (old, new) in changes.items()))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, torch.Tensor) else value
