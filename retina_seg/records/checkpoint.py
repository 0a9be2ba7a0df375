"""The checkpoint contract: what a retina-seg checkpoint carries besides its weights (one typed payload,
``RunInfo``), written atomically beside its target, loaded safely (weights_only), the newest readable one chosen
as the resume point, and the network it was trained with rebuilt."""

import logging
import re
import zipfile
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from torch import nn

from ..utils.atomic import write_atomic
from .run_folder import LAST_CKPT

log = logging.getLogger(__name__)


# The only networks a checkpoint may ask to build: its model entry goes to hydra's instantiate, which would
# otherwise call any importable target (weights_only=True alone does not stop a crafted checkpoint from that).
NETWORK_TARGETS = ("retina_seg.models.unet.UNet",)
# Losses a checkpoint may name (our own module only: a checkpoint must not choose what gets called).
LOSS_MODULE = "retina_seg.training.losses."
# Input transforms a checkpoint may rebuild for evaluation (its normalisation and eval transforms).
TRANSFORM_MODULE = "albumentations."


# How torch's weights_only unpickler names the object it refused to build.
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


# The checkpoint entry that holds the RunInfo payload (beside Lightning's own state_dict, loops, ...).
PAYLOAD_KEY = "retina_seg"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class RunInfo:
    """What evaluation, prediction and export need to repeat training's view of a photograph: plain data only,
    so a checkpoint loads with weights_only. Optional fields have the defaults older checkpoints imply."""

    model: dict[str, Any]  # the network's constructor config (a ``_target_`` among NETWORK_TARGETS)
    normalize: dict[str, Any]  # the albumentations Normalize of training
    threshold: float  # 0.5 while training; the one chosen on validation once the best checkpoint is known
    channels: str = "rgb"
    loss: dict[str, Any] = field(default_factory=dict)
    eval_transforms: dict[str, Any] = field(default_factory=dict)
    flip_tta: bool = False  # the threshold was chosen on flip-averaged probabilities
    fov_diameter: float | None = None  # the training photographs' typical FOV diameter (scale-aware prediction)
    mask_rule: str = "half"  # how its training masks were binarised (retina_seg.data.io.MASK_RULES)
    # Each photograph's colour standardised inside its FOV (retina_seg.data.colour.ColourStandard's payload: mode,
    # target mean and std); None: photographs as photographed, as in every checkpoint from before the option.
    colour: dict[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    def with_threshold(self, threshold: float) -> "RunInfo":
        return replace(self, threshold=float(threshold))

    @classmethod
    def from_payload(cls, payload: Any, path: str | Path) -> "RunInfo":
        """The checkpoint's payload checked: a CheckpointError names the file and the missing or foreign entry."""
        if not isinstance(payload, dict):
            raise CheckpointError(f"checkpoint {path}: its {PAYLOAD_KEY} entry is not a mapping")
        missing = [
            f.name
            for f in fields(cls)
            if f.default is MISSING and f.default_factory is MISSING and payload.get(f.name) is None
        ]
        if missing:
            raise CheckpointError(f"checkpoint {path}: its {PAYLOAD_KEY} entry lacks {missing}")
        for key in ("model", "normalize"):
            if not isinstance(payload[key], dict):
                raise CheckpointError(f"checkpoint {path}: its {PAYLOAD_KEY} entry's {key} is not a mapping")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in payload.items() if k in known and v is not None}
        values["eval_transforms"] = values.get("eval_transforms") or {}
        return cls(**values)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made crash-safe: the file is written beside its target and renamed.

    Lightning's own writer stages the file in TMPDIR; on another filesystem its final move is a copy, and a
    kill during that copy leaves a truncated ``last.ckpt``. Here a kill leaves the previous file intact.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        write_atomic(path, lambda tmp: save_checkpoint_file(checkpoint, tmp))


def save_checkpoint_file(checkpoint: dict[str, Any], path: Path) -> None:
    """``torch.save`` through a file this function opens and closes. Given a path, torch's own writer reports a
    full disk as "basic_ios::clear" with no OSError behind it, and its open stream, kept alive by the error's
    traceback, holds the partial file's space after the file is removed; a Python file raises the OSError and
    is closed as the error leaves it, so the space is free for the record of the failure."""
    with open(path, "wb") as handle:
        torch.save(checkpoint, handle)


def load_checkpoint_file(path: str | Path) -> Any:
    """``torch.load(weights_only=True)``, its failures turned into a CheckpointError that says what the file is."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # garbage makes the unpickler fail in many ways (KeyError, IndexError, EOFError...)
        refused = _REFUSED_GLOBAL.search(str(error))
        if refused:  # torch's own message advises weights_only=False: exactly what must not be done here
            raise CheckpointError(
                f"checkpoint {path}: refused, it holds pickled objects that are not plain data "
                f"({refused[1]}; loaded with weights_only=True)"
            ) from None
        what = (
            "an empty file"
            if path.stat().st_size == 0
            else ("a damaged torch.save archive" if zipfile.is_zipfile(path) else "not a torch.save archive")
        )
        raise CheckpointError(
            f"checkpoint {path}: corrupt or not a PyTorch checkpoint ({what}: {type(error).__name__})"
        ) from None


def epochs_done(path: str | Path) -> int:
    """Epochs a Lightning checkpoint has finished (its fit loop's counter, valid mid-run and at the end)."""
    checkpoint = load_checkpoint_file(path)
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"checkpoint {path}: not a Lightning training checkpoint (no fit loop state)") from error


def resume_point(folder: Path) -> tuple[Path, int] | None:
    """The readable checkpoint of ``folder`` with the most epochs done (last.ckpt on a tie), and those epochs;
    None when there is none. Every unreadable checkpoint is named in a warning, and a choice other than
    last.ckpt is logged with its reason."""
    readable, damaged = [], {}
    for path in sorted(folder.glob("*.ckpt"), key=lambda p: p.name != LAST_CKPT):
        try:
            readable.append((epochs_done(path), path.name == LAST_CKPT, path))
        except CheckpointError as error:
            damaged[path.name] = error
            log.warning("Cannot resume from %s: %s", path, error)
    if not readable:
        return None
    done, _, path = max(readable)
    if path.name != LAST_CKPT:
        last_done = next((epochs for epochs, is_last, _ in readable if is_last), None)
        log_choice = log.info if last_done is not None else log.warning
        log_choice(
            "Resuming from %s, the newest readable checkpoint (%d epoch(s) done): %s",
            path,
            done,
            _why_not_last(folder / LAST_CKPT, last_done, LAST_CKPT in damaged),
        )
    return path, done


def _why_not_last(last: Path, last_done: int | None, damaged: bool) -> str:
    """Why the resume point is not last.ckpt, for the line that names the one chosen."""
    if damaged:
        return f"{last} is damaged"
    if last_done is None:
        return f"there is no {last}"
    return f"{last} is older ({last_done} epoch(s) done)"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint holding arbitrary pickled objects is refused."""
    checkpoint = load_checkpoint_file(path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or PAYLOAD_KEY not in checkpoint:
        raise CheckpointError(f"checkpoint {path}: not a retina-seg checkpoint (no state_dict/{PAYLOAD_KEY} entry)")
    return checkpoint


def store_threshold(path: str | Path, threshold: float) -> None:
    """Write the threshold chosen on validation into a saved checkpoint's payload, atomically."""
    checkpoint = read_checkpoint(path)
    checkpoint[PAYLOAD_KEY]["threshold"] = float(threshold)
    write_atomic(path, lambda tmp: save_checkpoint_file(checkpoint, tmp))


def network_from_checkpoint(path: str | Path) -> tuple[nn.Module, RunInfo]:
    """The trained U-Net in eval mode, and the checkpoint's run info (threshold, normalisation, ...)."""
    checkpoint = read_checkpoint(path)
    info = RunInfo.from_payload(checkpoint[PAYLOAD_KEY], path)
    weights = {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    return build_network(info, weights, f"checkpoint {path}"), info


def build_network(info: RunInfo, weights: dict[str, torch.Tensor], source: str) -> nn.Module:
    """The network ``info`` describes (one of NETWORK_TARGETS only) in eval mode, holding ``weights``; a
    CheckpointError starts with ``source``, the file they came from."""
    target = info.model.get("_target_")
    if target not in NETWORK_TARGETS:
        raise CheckpointError(f"{source}: model {target!r} is not one of {NETWORK_TARGETS}")
    try:
        net = instantiate(info.model, _recursive_=False)
    except Exception as error:  # hydra wraps the constructor's own error (a bad depth, width, ...)
        raise CheckpointError(f"{source}: cannot build its model ({error})") from error
    try:
        net.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"{source}: weights do not fit its model ({error})") from error
    return net.eval()


def loss_from_checkpoint(info: RunInfo, default: Any) -> Any:
    """The loss the checkpoint was trained with (so eval's test_loss equals the run's), else ``default``."""
    loss = info.loss
    if not loss or not str(loss.get("_target_", "")).startswith(LOSS_MODULE):
        return default
    return instantiate(loss, _recursive_=False)


def _targets(config: Any) -> list[str]:
    """Every ``_target_`` in a nested config (hydra instantiates nested entries too)."""
    if isinstance(config, dict):
        own = [str(config["_target_"])] if "_target_" in config else []
        return own + [target for value in config.values() for target in _targets(value)]
    if isinstance(config, (list, tuple)):
        return [target for value in config for target in _targets(value)]
    return []


def transforms_from_checkpoint(info: RunInfo, path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint's normalisation and eval transforms, refused unless every target is an albumentations one."""
    entries = {"normalize": info.normalize, "eval_transforms": info.eval_transforms}
    for key, config in entries.items():
        foreign = [target for target in _targets(config) if not target.startswith(TRANSFORM_MODULE)]
        if foreign:
            raise CheckpointError(
                f"checkpoint {path}: {key} names {foreign}; only {TRANSFORM_MODULE}* transforms "
                "are rebuilt from a checkpoint"
            )
    return entries["normalize"], entries["eval_transforms"]
