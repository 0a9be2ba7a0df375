"""What each entrypoint's config may hold: its schema (types, which Hydra checks) and its rules (values, which
``config_rules.check_config`` checks), side by side.

Each schema is registered in Hydra's ConfigStore as ``base_<entrypoint>`` and named first in the defaults list
of conf/<entrypoint>.yaml, so an unknown key, a wrong type or a null where none is allowed is Hydra's own
error before anything runs. The YAML files hold the values and their documentation; the schemas hold no
defaults. Config groups (data, model, trainer, ...) are typed Any here: their keys are the ones their YAML
files define, and train's rules check the values users override most.
"""

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from .config_rules import Rule, folder_to_write, fraction, integer, is_int, is_number, one_of, positive

SPLITS = ("val", "test")
MODES = ("auto", "whole", "tiles", "resize")
EXPORT_FORMATS = ("pt2", "onnx", "safetensors", "torchscript")


@dataclass
class TrainSchema:
    task_name: str = MISSING
    seed: int = MISSING
    test: bool = MISSING
    hparams_file: Optional[str] = MISSING
    resume: Any = MISSING  # auto, a checkpoint path, or null / false / none
    epoch_scale: float = MISSING
    skip_completed: bool = MISSING
    # A validation metric and max|min: checked by retina_seg.records.objective.OBJECTIVE_RULES.
    optimized_metric: str = MISSING
    optimized_mode: str = MISSING
    paths: Any = MISSING
    data: Any = MISSING
    augmentation: Any = MISSING
    model: Any = MISSING
    module: Any = MISSING
    loss: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = MISSING
    trainer: Any = MISSING
    callbacks: Any = MISSING
    logger: Any = MISSING
    # Set by the reference sweep's points (sweeps/reference/job_<id>.yaml); null for any other run.
    reference_job_id: Optional[int] = None


@dataclass
class ScaleSchema:
    train_fov_diameter: Optional[float] = MISSING
    tolerance: float = MISSING


@dataclass
class EvalSchema:
    task_name: str = MISSING
    ckpt_path: str = MISSING
    split: str = MISSING
    seed: int = MISSING
    threshold: Optional[float] = MISSING
    flip_tta: Optional[bool] = MISSING
    mask_rule: Optional[str] = MISSING  # checked by the data layer (retina_seg.data.io.MASK_RULES)
    protocols: List[str] = MISSING  # checked against retina_seg.records.protocols.PROTOCOLS
    scale_aware: bool = MISSING
    scale: ScaleSchema = field(default_factory=ScaleSchema)
    second_observer: bool = MISSING
    paths: Any = MISSING
    data: Any = MISSING
    augmentation: Any = MISSING
    loss: Any = MISSING
    trainer: Any = MISSING


@dataclass
class TileSchema:
    size: int = MISSING
    overlap: int = MISSING


@dataclass
class ResizeSchema:
    height: int = MISSING
    width: int = MISSING


@dataclass
class OverlaySchema:
    color: List[int] = MISSING
    alpha: float = MISSING


@dataclass
class PredictSchema:
    task_name: str = MISSING
    ckpt_path: Optional[str] = MISSING
    input: Any = MISSING  # a file, a folder or a glob, or a list of these
    output: str = MISSING
    overwrite: bool = MISSING
    masks: Optional[str] = MISSING
    fov_masks: Optional[str] = MISSING
    detect_fov: bool = MISSING
    threshold: Optional[float] = MISSING
    mode: str = MISSING
    scale: ScaleSchema = field(default_factory=ScaleSchema)
    whole_image_max_pixels: int = MISSING
    tile: TileSchema = field(default_factory=TileSchema)
    resize: ResizeSchema = field(default_factory=ResizeSchema)
    batch_size: int = MISSING
    num_workers: int = MISSING
    device: str = MISSING
    channels_last: bool = MISSING
    flip_tta: Optional[bool] = MISSING
    progress_bar: bool = MISSING
    overlay: OverlaySchema = field(default_factory=OverlaySchema)
    paths: Any = MISSING


@dataclass
class ParitySchema:
    sizes: List[List[int]] = MISSING
    tolerance: float = MISSING


@dataclass
class ExportSchema:
    task_name: str = MISSING
    ckpt_path: str = MISSING
    output: str = MISSING
    formats: List[str] = MISSING
    run_dir: Optional[str] = MISSING
    onnx_opset: int = MISSING
    parity: ParitySchema = field(default_factory=ParitySchema)
    paths: Any = MISSING


SCHEMAS = {"train": TrainSchema, "eval": EvalSchema, "predict": PredictSchema, "export": ExportSchema}


def register_schemas() -> None:
    """Put each schema in Hydra's ConfigStore as ``base_<entrypoint>``, where conf/<entrypoint>.yaml names it."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(name=f"base_{name}", node=schema)


def _smallest_side(cfg: DictConfig | None) -> int:
    depth = OmegaConf.select(cfg, "model.depth", default=4) if cfg is not None else 4
    return 2**depth if is_int(depth) and 0 <= depth <= 16 else 1


def _side(key: str) -> Rule:
    return Rule(key, lambda v, cfg: is_int(v) and v >= _smallest_side(cfg), "an integer >= 2**model.depth")


def _source_weights(value: Any, cfg: DictConfig | None) -> bool:
    """Weights of data=multi's sources: each names a source of data.source.sources and is a number > 0."""
    sources = OmegaConf.select(cfg, "data.source.sources", default=None) if cfg is not None else None
    return isinstance(value, dict) and all(
        name in (sources or {}) and is_number(weight) and weight > 0 for name, weight in value.items()
    )


TRAIN_RULES = (
    integer("seed"),
    integer("trainer.max_epochs", 1),
    integer("data.batch_size", 1),
    integer("data.num_workers", 0),
    integer("data.train_repeats", 1),
    integer("data.source.n_train", 1),
    integer("data.source.n_val", 1),
    integer("data.source.n_test", 1),
    _side("data.source.height"),
    _side("data.source.width"),
    _side("data.fov_diameter"),
    Rule("data.source.weights", _source_weights, "a mapping from names in data.source.sources to numbers > 0"),
    integer("data.source.limit_train", 1, nullable=True),
    integer("data.source.limit_test", 1, nullable=True),
    # data=multi: each source's own split settings.
    integer("data.source.sources.*.n_val", 1),
    integer("data.source.sources.*.limit_train", 1, nullable=True),
    integer("data.source.sources.*.limit_test", 1, nullable=True),
    positive("optimizer.lr"),
    fraction("module.threshold", "null or in (0, 1)", nullable=True),
)

THRESHOLD_RULE = fraction("threshold", "null (the checkpoint's) or a number in (0, 1)", nullable=True)
SCALE_RULES = (
    Rule("scale.train_fov_diameter", lambda v, cfg: is_number(v) and v > 0, "null (the checkpoint's) or pixels > 0"),
    fraction("scale.tolerance", "a number in [0, 1)", ends="[)"),
)

EVAL_RULES = (one_of("split", SPLITS), THRESHOLD_RULE, *SCALE_RULES)


def _device_here(value: str, cfg: DictConfig | None) -> bool:
    """auto, or a torch device name this machine has."""
    if value == "auto":
        return True
    import torch

    try:
        device = torch.device(value)
    except RuntimeError:
        return False
    return device.type != "cuda" or torch.cuda.is_available()


def _overlap_fits(value: Any, cfg: DictConfig | None) -> bool:
    size = OmegaConf.select(cfg, "tile.size", default=None) if cfg is not None else None
    return is_int(value) and value >= 0 and (not is_int(size) or value <= size // 2)


def _rgb(value: Any, cfg: DictConfig | None) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(is_int(c) and 0 <= c <= 255 for c in value)


PREDICT_RULES = (
    folder_to_write("output"),
    THRESHOLD_RULE,
    one_of("mode", MODES),
    *SCALE_RULES,
    integer("whole_image_max_pixels", 1),
    integer("tile.size", 16),
    Rule("tile.overlap", _overlap_fits, "an integer >= 0 and at most half of tile.size"),
    integer("resize.height", 16),
    integer("resize.width", 16),
    integer("batch_size", 1),
    integer("num_workers", 0),
    Rule("device", _device_here, "auto or a torch device this machine has (cpu, cuda, cuda:1, ...)"),
    Rule("overlay.color", _rgb, "three integers in 0..255 (R, G, B)"),
    fraction("overlay.alpha", "a number in [0, 1]", ends="[]"),
)


def _formats(value: Any, cfg: DictConfig | None) -> bool:
    return isinstance(value, list) and bool(value) and all(f in EXPORT_FORMATS for f in value)


def _sizes(value: Any, cfg: DictConfig | None) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(s, list) and len(s) == 2 and all(is_int(v) and v >= 16 for v in s) for s in value)
    )


EXPORT_RULES = (
    folder_to_write("output"),
    Rule("formats", _formats, f"a non-empty list of {list(EXPORT_FORMATS)}"),
    integer("onnx_opset", 9),
    Rule("parity.sizes", _sizes, "a non-empty list of [height, width] pairs of integers >= 16"),
    positive("parity.tolerance"),
)
