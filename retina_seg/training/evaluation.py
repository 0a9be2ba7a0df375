"""Evaluating a saved checkpoint on a split, with the metrics and run-folder format of training."""
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from ..config import resolved_config
from .checkpoints import loss_from_checkpoint, network_from_checkpoint, transforms_from_checkpoint
from .metrics import summarize
from .module import VesselSegmentationModule
from .run_folder import write_metrics


def evaluate(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    net, info = network_from_checkpoint(cfg.ckpt_path)
    normalize, eval_transforms = transforms_from_checkpoint(info, cfg.ckpt_path)
    threshold = info["threshold"] if cfg.threshold is None else float(cfg.threshold)
    flip_tta = info.get("flip_tta", False) if cfg.flip_tta is None else bool(cfg.flip_tta)
    with open_dict(cfg):  # the input scaling the checkpoint was trained with, not the config's default
        cfg.data.augmentation.normalize = normalize
        cfg.data.augmentation.eval = eval_transforms
        cfg.data.channels = info["channels"]
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.setup("test")
    module = VesselSegmentationModule(net, loss_from_checkpoint(info, instantiate(cfg.loss)), optimizer=None, threshold=threshold,
                                      flip_tta=flip_tta)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    loader = datamodule.val_dataloader() if cfg.split == "val" else datamodule.test_dataloader()
    split = cfg.split
    run = trainer.validate if split == "val" else trainer.test
    results = run(module, dataloaders=loader, verbose=False)[0]
    metrics = module.val_metrics if split == "val" else module.test_metrics
    record = {"status": "completed", "checkpoint": str(cfg.ckpt_path), "split": split, "threshold": threshold,
              "flip_tta": flip_tta,
              f"{split}_loss": results[f"{split}_loss"], **summarize(metrics, threshold, split),
              **{name: value for name, value in results.items() if "clDice" in name},
              "config": resolved_config(cfg)}
    if pl.utilities.rank_zero_only.rank == 0:
        write_metrics(output_dir, record)
    return record
