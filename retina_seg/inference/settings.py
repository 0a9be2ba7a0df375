"""The predictor's and the exporter's settings, read from the Hydra config once it is checked (its schema and
rules: config_schemas.py), before any file is touched."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ..config_rules import check_config
from ..config_schemas import EXPORT_RULES, PREDICT_RULES
from ..data.scale import DEFAULT_TOLERANCE
from ..records.bundle import BUNDLED_PREFIX, bundle_folder, bundled_name, default_model_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tiling:
    """How an image becomes network inputs (see conf/predict.yaml)."""

    mode: str = "auto"
    whole_image_max_pixels: int = 1024 * 1024
    tile_size: int = 512
    tile_overlap: int = 128
    resize_height: int = 512
    resize_width: int = 512

    @property
    def scale_aware(self) -> bool:
        """Only auto puts photographs at the training scale; whole and tiles keep their own scale."""
        return self.mode == "auto"

    def plan_kind(self, height: int, width: int) -> str:
        """ "whole", "tiles" or "resize" for a network image of this size (in auto mode: after rescaling)."""
        if self.mode == "auto":
            return "whole" if height * width <= self.whole_image_max_pixels else "tiles"
        return self.mode


@dataclass(frozen=True)
class ScaleSettings:
    """Where the training FOV diameter comes from (None: the checkpoint) and the tolerance (conf/predict.yaml)."""

    train_fov_diameter: float | None = None
    tolerance: float = DEFAULT_TOLERANCE


@dataclass(frozen=True)
class PredictSettings:
    ckpt_path: Path
    inputs: list[str]
    output: Path
    overwrite: bool
    masks: Path | None
    fov_masks: Path | None
    detect_fov: bool
    threshold: float | None
    tiling: Tiling
    scale: ScaleSettings
    batch_size: int
    num_workers: int
    device: str
    channels_last: bool
    flip_tta: bool | None
    progress_bar: bool
    overlay_color: tuple[int, int, int]
    overlay_alpha: float


def _path(cfg: DictConfig, key: str) -> Path | None:
    value = OmegaConf.select(cfg, key)
    return None if value in (None, "") else Path(str(value))


def scale_settings(cfg: DictConfig) -> ScaleSettings:
    """`scale.train_fov_diameter` and `scale.tolerance`, shared with eval (checked by its rules)."""
    diameter = cfg.scale.train_fov_diameter
    return ScaleSettings(None if diameter is None else float(diameter), float(cfg.scale.tolerance))


def _device(value: str) -> str:
    """ "auto": the GPU when there is one; otherwise the torch device named (it exists here: checked)."""
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return value


def _predict_checkpoint(ckpt_path: str | None) -> Path:
    """The checkpoint given, or else the bundled model installed (a BundleError when there is none)."""
    if ckpt_path is not None:
        return Path(str(ckpt_path))
    name = default_model_name()
    log.info("No ckpt_path given: predicting with the bundled model %s", name)
    return Path(BUNDLED_PREFIX + name)


def predict_settings(cfg: DictConfig) -> PredictSettings:
    """The settings of conf/predict.yaml, every value checked first (ConfigError naming each bad one)."""
    check_config(cfg, PREDICT_RULES)
    inputs = cfg.input
    inputs = [str(i) for i in inputs] if OmegaConf.is_list(inputs) else [str(inputs)]
    tiling = Tiling(
        cfg.mode, cfg.whole_image_max_pixels, cfg.tile.size, cfg.tile.overlap, cfg.resize.height, cfg.resize.width
    )
    return PredictSettings(
        ckpt_path=_predict_checkpoint(cfg.ckpt_path),
        inputs=inputs,
        output=Path(str(cfg.output)),
        overwrite=cfg.overwrite,
        masks=_path(cfg, "masks"),
        fov_masks=_path(cfg, "fov_masks"),
        detect_fov=cfg.detect_fov,
        threshold=cfg.threshold,
        tiling=tiling,
        scale=scale_settings(cfg),
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        device=_device(cfg.device),
        channels_last=cfg.channels_last,
        flip_tta=cfg.flip_tta,
        progress_bar=cfg.progress_bar,
        overlay_color=tuple(cfg.overlay.color),
        overlay_alpha=cfg.overlay.alpha,
    )


@dataclass(frozen=True)
class ExportSettings:
    ckpt_path: Path
    output: Path
    formats: list[str]
    run_dir: Path
    onnx_opset: int
    parity_sizes: list[tuple[int, int]]
    parity_tolerance: float


def export_settings(cfg: DictConfig) -> ExportSettings:
    """The settings of conf/export.yaml, every value checked first (ConfigError naming each bad one)."""
    check_config(cfg, EXPORT_RULES)
    ckpt_path = Path(str(cfg.ckpt_path))
    bundle = bundled_name(ckpt_path)
    run_dir = _path(cfg, "run_dir") or (ckpt_path.resolve().parent.parent if bundle is None else bundle_folder(bundle))
    return ExportSettings(
        ckpt_path,
        Path(str(cfg.output)),
        list(cfg.formats),
        run_dir,
        cfg.onnx_opset,
        [tuple(size) for size in cfg.parity.sizes],
        cfg.parity.tolerance,
    )
