"""Evaluating a saved checkpoint on a split, with the metrics and run-folder format of training."""
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from ..config import resolved_config
from ..data.errors import DataError
from ..data.scale import ScaleRule, training_scale
from ..inference.settings import scale_settings
from .checkpoints import loss_from_checkpoint, network_from_checkpoint, transforms_from_checkpoint
from .metrics import CentrelineDice, VesselMetrics, summarize
from .module import VesselSegmentationModule
from .run_folder import write_metrics


def evaluate(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    net, info = network_from_checkpoint(cfg.ckpt_path)
    normalize, eval_transforms = transforms_from_checkpoint(info, cfg.ckpt_path)
    threshold = info["threshold"] if cfg.threshold is None else float(cfg.threshold)
    flip_tta = info.get("flip_tta", False) if cfg.flip_tta is None else bool(cfg.flip_tta)
    with open_dict(cfg):  # the input scaling the checkpoint was trained with, not the config's default
        cfg.augmentation.normalize = normalize  # data.augmentation is ${augmentation}
        cfg.augmentation.eval = eval_transforms
        cfg.data.channels = info["channels"]
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.setup("test")
    datamodule.eval_scale, scale_source = _scale_rule(cfg, info)
    module = VesselSegmentationModule(net, loss_from_checkpoint(info, instantiate(cfg.loss)), optimizer=None, threshold=threshold,
                                      flip_tta=flip_tta)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    loader = datamodule.val_dataloader() if cfg.split == "val" else datamodule.test_dataloader()
    split = cfg.split
    run = trainer.validate if split == "val" else trainer.test
    results = run(module, dataloaders=loader, verbose=False)[0]
    metrics = module.val_metrics if split == "val" else module.test_metrics
    record = {"status": "completed", "checkpoint": str(cfg.ckpt_path), "split": split, "threshold": threshold,
              "flip_tta": flip_tta, "scale": _scale_record(datamodule, split, scale_source),
              f"{split}_loss": results[f"{split}_loss"], **summarize(metrics, threshold, split),
              **{name: value for name, value in results.items() if "clDice" in name},
              "config": resolved_config(cfg)}
    if pl.utilities.rank_zero_only.rank == 0:
        write_metrics(output_dir, record)
    return record


def _scale_rule(cfg: DictConfig, info: dict[str, Any]) -> tuple[ScaleRule, str]:
    if not cfg.scale_aware:
        return ScaleRule(None), "scale_aware=false: native scale"
    settings = scale_settings(cfg)
    return training_scale(info.get("fov_diameter"), settings.train_fov_diameter, settings.tolerance, cfg.ckpt_path)


def _scale_record(datamodule, split: str, source: str) -> dict[str, Any]:
    """The training diameter, where it came from, and the factor each photograph was rescaled by."""
    rule = datamodule.eval_scale
    return {"train_fov_diameter": rule.train_fov_diameter, "source": source,
            "factors": [round(rule.factor(d), 6) for d in datamodule.fov_diameters(split)]}


def score_second_observer(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """The second observer's masks scored against the first's with the metrics of a model (the human baseline).
    A binary mask ranks no pixels, so there is no AUC; the rest are the model's scores at any threshold."""
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.setup("test")
    samples = getattr(datamodule.splits, cfg.split)
    lacking = [s.name for s in samples if s.second_mask is None]
    if lacking or not samples:
        raise DataError(f"second_observer=true: no second-observer masks for {lacking or 'an empty split'} in "
                        f"{cfg.data.root} ({cfg.split} split)")
    pixels, centrelines = VesselMetrics(), CentrelineDice()
    for sample in samples:
        human, truth, fov = (torch.from_numpy(a)[None] for a in (sample.second_mask, sample.mask, sample.fov))
        pixels.update(human.float(), truth, fov)
        centrelines.update(human, truth, fov)
    scores = {k: v for k, v in summarize(pixels, 0.5, cfg.split).items() if "AUC" not in k}
    cl = centrelines.compute()
    record = {"status": "completed", "observer": "second against first", "split": cfg.split,
              "images": len(samples), **scores, f"{cfg.split}_clDice": cl["fov"], f"{cfg.split}_clDice_all": cl["all"],
              "config": resolved_config(cfg)}
    write_metrics(output_dir, record)
    return record
