"""Loading our checkpoints safely (weights_only) and rebuilding the network they were trained with."""
import pickle
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn


# The only networks a checkpoint may ask to build: its model entry goes to hydra's instantiate, which would
# otherwise call any importable target (weights_only=True alone does not stop a crafted checkpoint from that).
NETWORK_TARGETS = ("retina_seg.models.unet.UNet",)
# Losses a checkpoint may name (our own module only: a checkpoint must not choose what gets called).
LOSS_MODULE = "retina_seg.training.losses."
# Input transforms a checkpoint may rebuild for evaluation (its normalisation and eval transforms).
TRANSFORM_MODULE = "albumentations."


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the reason."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint holding arbitrary pickled objects is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"checkpoint {path}: refused, it holds pickled objects that are not plain "
                              f"data (loaded with weights_only=True): {str(error).splitlines()[0]}") from error
    except Exception as error:  # garbage makes the unpickler fail in many ways (KeyError, RuntimeError, EOFError...)
        raise CheckpointError(f"checkpoint {path}: corrupt or not a PyTorch checkpoint ({error})") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "retina_seg" not in checkpoint:
        raise CheckpointError(f"checkpoint {path}: not a retina-seg checkpoint (no state_dict/retina_seg entry)")
    return checkpoint


def network_from_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The trained U-Net in eval mode, and the checkpoint's run info (threshold, normalisation, ...)."""
    checkpoint = read_checkpoint(path)
    info = checkpoint["retina_seg"]
    if "model" not in info:
        raise CheckpointError(f"checkpoint {path}: no model description in its retina_seg entry")
    target = info["model"].get("_target_") if isinstance(info["model"], dict) else None
    if target not in NETWORK_TARGETS:
        raise CheckpointError(f"checkpoint {path}: model {target!r} is not one of {NETWORK_TARGETS}")
    try:
        net = instantiate(info["model"], _recursive_=False)
    except Exception as error:  # hydra wraps the constructor's own error (a bad depth, width, ...)
        raise CheckpointError(f"checkpoint {path}: cannot build its model ({error})") from error
    weights = {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {path}: weights do not fit its model ({error})") from error
    return net.eval(), info


def loss_from_checkpoint(info: dict[str, Any], default: Any) -> Any:
    """The loss the checkpoint was trained with (so eval's test_loss equals the run's), else ``default``."""
    loss = info.get("loss")
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


def transforms_from_checkpoint(info: dict[str, Any], path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint's normalisation and eval transforms, refused unless every target is an albumentations one."""
    entries = {"normalize": info.get("normalize"), "eval_transforms": info.get("eval_transforms") or {}}
    if not isinstance(entries["normalize"], dict):
        raise CheckpointError(f"checkpoint {path}: its retina_seg entry has no normalize transform")
    for key, config in entries.items():
        foreign = [target for target in _targets(config) if not target.startswith(TRANSFORM_MODULE)]
        if foreign:
            raise CheckpointError(f"checkpoint {path}: {key} names {foreign}; only {TRANSFORM_MODULE}* transforms "
                                  "are rebuilt from a checkpoint")
    return entries["normalize"], entries["eval_transforms"]
