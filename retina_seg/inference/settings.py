"""The predictor's settings, read from the Hydra config and checked before any file is touched."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ..config import ConfigError
from ..data.scale import DEFAULT_TOLERANCE

MODES = ("auto", "whole", "tiles", "resize")


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
        """"whole", "tiles" or "resize" for a network image of this size (in auto mode: after rescaling)."""
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


def _int(cfg: DictConfig, key: str, low: int) -> int:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{key}={value!r} must be an integer >= {low}")
    return value


def _path(cfg: DictConfig, key: str) -> Path | None:
    value = OmegaConf.select(cfg, key)
    return None if value in (None, "") else Path(str(value))


def _threshold(cfg: DictConfig) -> float | None:
    value = cfg.get("threshold")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1):
        raise ConfigError(f"threshold={value!r} must be null (the checkpoint's) or a number in (0, 1)")
    return None if value is None else float(value)


def _tiling(cfg: DictConfig) -> Tiling:
    if cfg.mode not in MODES:
        raise ConfigError(f"mode={cfg.mode!r} must be one of {MODES}")
    size = _int(cfg, "tile.size", 16)
    overlap = _int(cfg, "tile.overlap", 0)
    if overlap > size // 2:
        raise ConfigError(f"tile.overlap={overlap} must be at most half of tile.size={size}")
    return Tiling(cfg.mode, _int(cfg, "whole_image_max_pixels", 1), size, overlap,
                  _int(cfg, "resize.height", 16), _int(cfg, "resize.width", 16))


def _number(cfg: DictConfig, key: str) -> float | None:
    value = OmegaConf.select(cfg, key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{key}={value!r} must be a number")
    return None if value is None else float(value)


def scale_settings(cfg: DictConfig) -> ScaleSettings:
    """`scale.train_fov_diameter` (null or pixels > 0) and `scale.tolerance` (in [0, 1)), shared with eval."""
    diameter, tolerance = _number(cfg, "scale.train_fov_diameter"), _number(cfg, "scale.tolerance")
    if diameter is not None and diameter <= 0:
        raise ConfigError(f"scale.train_fov_diameter={diameter!r} must be null (the checkpoint's) or pixels > 0")
    if tolerance is None or not 0 <= tolerance < 1:
        raise ConfigError(f"scale.tolerance={tolerance!r} must be a number in [0, 1)")
    return ScaleSettings(diameter, tolerance)


def _optional_bool(cfg: DictConfig, key: str) -> bool | None:
    value = cfg.get(key)
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} must be null, true or false")
    return value


def _device(cfg: DictConfig) -> str:
    """"auto": the GPU when there is one; otherwise a torch device name that must exist here."""
    value = str(cfg.device)
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(value)
    except RuntimeError as error:
        raise ConfigError(f"device={value!r} is not a torch device name (auto, cpu, cuda, cuda:1, ...)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={value!r} but no CUDA device is available here")
    return value


def _overlay(cfg: DictConfig) -> tuple[tuple[int, int, int], float]:
    color = OmegaConf.to_container(cfg.overlay.color) if OmegaConf.is_list(cfg.overlay.color) else None
    if not color or len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
        raise ConfigError(f"overlay.color={cfg.overlay.color!r} must be three integers in 0..255 (R, G, B)")
    alpha = cfg.overlay.alpha
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ConfigError(f"overlay.alpha={alpha!r} must be a number in [0, 1]")
    return tuple(color), float(alpha)


def _output(cfg: DictConfig) -> Path:
    output = Path(str(cfg.output))
    if output.exists() and not output.is_dir():
        raise ConfigError(f"output={output} is a file; it must be a folder (existing or to create)")
    return output


def predict_settings(cfg: DictConfig) -> PredictSettings:
    """Every key checked, each problem naming its key and value."""
    inputs = cfg.input
    inputs = [str(i) for i in inputs] if OmegaConf.is_list(inputs) else [str(inputs)]
    color, alpha = _overlay(cfg)
    return PredictSettings(
        ckpt_path=Path(str(cfg.ckpt_path)), inputs=inputs, output=_output(cfg),
        masks=_path(cfg, "masks"), fov_masks=_path(cfg, "fov_masks"),
        detect_fov=bool(cfg.detect_fov), threshold=_threshold(cfg),
        tiling=_tiling(cfg), scale=scale_settings(cfg), batch_size=_int(cfg, "batch_size", 1), num_workers=_int(cfg, "num_workers", 0),
        device=_device(cfg), channels_last=bool(cfg.channels_last), flip_tta=_optional_bool(cfg, "flip_tta"),
        progress_bar=bool(cfg.progress_bar),
        overlay_color=color, overlay_alpha=alpha)


EXPORT_FORMATS = ("torchscript", "onnx", "safetensors")


@dataclass(frozen=True)
class ExportSettings:
    ckpt_path: Path
    output: Path
    formats: list[str]
    run_dir: Path
    onnx_opset: int
    parity_sizes: list[tuple[int, int]]
    parity_tolerance: float


def _sizes(cfg: DictConfig) -> list[tuple[int, int]]:
    sizes = OmegaConf.to_container(cfg.parity.sizes) if OmegaConf.is_list(cfg.parity.sizes) else None
    valid = sizes and all(isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) and v >= 16 for v in s)
                          for s in sizes)
    if not valid:
        raise ConfigError(f"parity.sizes={cfg.parity.sizes!r} must be a list of [height, width] pairs of "
                          "integers >= 16")
    return [tuple(s) for s in sizes]


def export_settings(cfg: DictConfig) -> ExportSettings:
    formats = OmegaConf.to_container(cfg.formats) if OmegaConf.is_list(cfg.formats) else [cfg.formats]
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise ConfigError(f"formats={formats!r} must be a non-empty list of {EXPORT_FORMATS}")
    tolerance = cfg.parity.tolerance
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance <= 0:
        raise ConfigError(f"parity.tolerance={tolerance!r} must be a number > 0")
    ckpt_path = Path(str(cfg.ckpt_path))
    run_dir = _path(cfg, "run_dir") or ckpt_path.resolve().parent.parent
    return ExportSettings(ckpt_path, _output(cfg), formats, run_dir, _int(cfg, "onnx_opset", 9),
                          _sizes(cfg), float(tolerance))
