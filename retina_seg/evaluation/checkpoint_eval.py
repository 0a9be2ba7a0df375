"""Evaluating a saved checkpoint on a split, with the metrics and run-folder format of training."""

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from ..config import resolved_config
from ..data.colour import ColourStandard
from ..data.errors import DataError
from ..data.io import check_mask_rule
from ..data.scale import ScaleRule, training_scale
from ..inference.settings import scale_settings
from ..records.bundle import load_network
from ..records.checkpoint import RunInfo, loss_from_checkpoint, transforms_from_checkpoint
from ..records.protocols import PER_IMAGE_SCORES, Protocol, protocol_named
from ..records.run_folder import RunStatus, write_metrics, write_test_images
from ..scoring.agreement import MaskAgreement
from ..scoring.pooled import summarize
from ..training.module import VesselSegmentationModule


def evaluate(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Score the checkpoint under each protocol of ``cfg.protocols``; one metrics.json with every protocol's keys."""
    net, info = load_network(cfg.ckpt_path)
    protocols = [protocol_named(name) for name in cfg.protocols]
    record = {
        "status": RunStatus.COMPLETED,
        "checkpoint": str(cfg.ckpt_path),
        "split": cfg.split,
        "protocols": {p.name: p.describe() for p in protocols},
    }
    image_rows = []
    for protocol in protocols:
        scores, rows = _score(cfg, net, info, protocol)
        record.update(scores)
        image_rows += rows
    record["config"] = resolved_config(cfg)
    if pl.utilities.rank_zero_only.rank == 0:
        write_metrics(output_dir, record)
        if cfg.split == "test":
            write_test_images(output_dir, image_rows)
    return record


def _score(cfg: DictConfig, net, info: RunInfo, protocol: Protocol) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The split's scores under one protocol: strict gives the training run's keys (test_IoU, ...), a per-image
    protocol its own suffixed keys, at its own threshold and with masks binarised by its own rule; and, when the
    test loop scored the split, each image's scores under that protocol (test_images.csv's rows)."""
    normalize, eval_transforms = transforms_from_checkpoint(info, cfg.ckpt_path)
    fixed = protocol.threshold
    threshold = fixed if fixed is not None else info.threshold if cfg.threshold is None else float(cfg.threshold)
    flip_tta = info.flip_tta if cfg.flip_tta is None else bool(cfg.flip_tta)
    rule = protocol.mask_rule or (check_mask_rule(cfg.mask_rule, "mask_rule") if cfg.mask_rule else info.mask_rule)
    with open_dict(cfg):  # the input scaling the checkpoint was trained with, not the config's default
        cfg.augmentation.normalize = normalize  # data.augmentation is ${augmentation}
        cfg.augmentation.eval = eval_transforms
        cfg.data.channels = info.channels
        cfg.data.colour = info.colour["mode"] if info.colour else None
        for source in _file_sources(cfg.data):  # the synthetic set's masks are exact: it has no rule
            source.mask_rule = rule
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.colour_standard = ColourStandard.from_payload(info.colour)  # the recorded target, not today's
    datamodule.setup("test")
    datamodule.eval_scale, scale_source = _scale_rule(cfg, info)
    per_image = protocol.averaging == "per_image"
    module = VesselSegmentationModule(
        net,
        loss_from_checkpoint(info, instantiate(cfg.loss)),
        optimizer=None,
        threshold=threshold,
        flip_tta=flip_tta,
        per_image_protocols=(protocol,) if per_image else (),
        source_names=datamodule.source_names,
    )
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    split = cfg.split
    if per_image:  # the per-image scores are the test loop's, whichever split is scored
        results = trainer.test(module, dataloaders=_loader(datamodule, split), verbose=False)[0]
        return {
            "mask_rule" + protocol.key_suffix: rule,
            **{protocol.key(split, name): results[protocol.key("test", name)] for name in PER_IMAGE_SCORES},
        }, _image_rows(module, datamodule, split, protocol)
    run = trainer.validate if split == "val" else trainer.test
    results = run(module, dataloaders=_loader(datamodule, split), verbose=False)[0]
    metrics = module.val_metrics if split == "val" else module.test_metrics
    scores = {
        "threshold": threshold,
        "flip_tta": flip_tta,
        "mask_rule": rule,
        "scale": _scale_record(datamodule, split, scale_source),
        f"{split}_loss": results[f"{split}_loss"],
        **summarize(metrics, threshold, split),
        **module.source_scores(split, threshold),  # data=multi: each set's own scores too (test_IoU_stare)
        **{name: value for name, value in results.items() if "clDice" in name},
    }
    if datamodule.source_names:
        scores["data_sources"] = datamodule.source_names
    return scores, _image_rows(module, datamodule, split, protocol)


def _image_rows(module: VesselSegmentationModule, datamodule, split: str, protocol: Protocol) -> list[dict[str, Any]]:
    """The test split's rows of ``protocol`` (test_images.csv is the test split's; the module also scores strict at
    a per-image protocol's threshold, rows that are not this protocol's)."""
    if split != "test":
        return []
    rows = module.test_image_scores([s.name for s in getattr(datamodule.splits, split)])
    return [row for row in rows if row["protocol"] == protocol.name]


def _loader(datamodule, split: str):
    return datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()


def _scale_rule(cfg: DictConfig, info: RunInfo) -> tuple[ScaleRule, str]:
    if not cfg.scale_aware:
        return ScaleRule(None), "scale_aware=false: native scale"
    settings = scale_settings(cfg)
    return training_scale(info.fov_diameter, settings.train_fov_diameter, settings.tolerance, cfg.ckpt_path)


def _scale_record(datamodule, split: str, source: str) -> dict[str, Any]:
    """The training diameter, where it came from, and the factor each photograph was rescaled by."""
    rule = datamodule.eval_scale
    return {
        "train_fov_diameter": rule.train_fov_diameter,
        "source": source,
        "factors": [round(rule.factor(d), 6) for d in datamodule.fov_diameters(split)],
    }


def score_second_observer(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """The second observer's masks scored against the first's with the metrics of a model (the human baseline,
    retina_seg.scoring.agreement): no AUC, since a binary mask ranks no pixels."""
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.setup("test")
    samples = getattr(datamodule.splits, cfg.split)
    lacking = [s.name for s in samples if s.second_mask is None]
    if lacking or not samples:
        raise DataError(
            f"second_observer=true: no second-observer masks for {lacking or 'an empty split'} in "
            f"{cfg.data.root} ({cfg.split} split)"
        )
    agreement = MaskAgreement()
    for sample in samples:
        agreement.add(sample.second_mask, sample.mask, sample.fov)
    record = {
        "status": RunStatus.COMPLETED,
        "observer": "second against first",
        "split": cfg.split,
        "images": len(samples),
        **agreement.summary(cfg.split),
        "config": resolved_config(cfg),
    }
    write_metrics(output_dir, record)
    return record


def _file_sources(data: DictConfig) -> list[DictConfig]:
    """The data config's sources that binarise masks from files: the one source, or each of data=multi's."""
    source = data.get("source")
    if source is None:
        return []
    sources = list(source.sources.values()) if "sources" in source else [source]
    return [s for s in sources if "mask_rule" in s]
