"""The bundle contract: a trained network that ships inside the package. A bundle is a folder of its own under
``retina_seg/bundled_models/`` holding the weights (``weights.safetensors``: plain tensors, no pickle) and the
model card (``card.json`` for programs, with the checkpoint's RunInfo payload; ``card.md`` for people). Every
command that takes ``ckpt_path`` accepts ``bundled:<name>`` for one; ``retina-seg-predict`` without ``ckpt_path``
uses the bundled model, when exactly one is installed."""

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from ..utils.atomic import TEMPORARY_SUFFIX, _umask
from .checkpoint import CheckpointError, RunInfo, build_network, network_from_checkpoint

log = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"
# A folder to look bundled models up in instead of the package's own (for tests, or models not yet shipped).
BUNDLED_MODELS_ENV = "RETINA_SEG_BUNDLED_MODELS"
PACKAGE_MODELS_DIR = Path(__file__).resolve().parents[1] / "bundled_models"
WEIGHTS_FILE, CARD_JSON, CARD_MARKDOWN = "weights.safetensors", "card.json", "card.md"
# The most a bundled model's weights may weigh: the package is installed everywhere the predictor is.
MAX_WEIGHTS_BYTES = 2_000_000
# What every card holds: the predictor's RunInfo payload (run_info) and what a reader of the card needs to trust it.
CARD_KEYS = (
    "name",
    "summary",
    "sources",
    "fov_diameter",
    "threshold",
    "test_scores",
    "retrain_command",
    "created",
    "machine",
    "weights_sha256",
    "run_info",
)


class BundleError(CheckpointError):
    """A bundled model that cannot be found or used; the message names the file or folder and the reason."""


def bundled_models_dir() -> Path:
    """Where bundled models are looked up: $RETINA_SEG_BUNDLED_MODELS when set, else the package's folder."""
    override = os.environ.get(BUNDLED_MODELS_ENV)
    return Path(override) if override else PACKAGE_MODELS_DIR


def bundled_model_names(root: Path | None = None) -> list[str]:
    """The bundles installed: every folder of ``root`` whose name starts with neither "." nor "_"."""
    root = bundled_models_dir() if root is None else root
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def bundle_folder(name: str) -> Path:
    root = bundled_models_dir()
    names = bundled_model_names(root)
    if name not in names:
        raise BundleError(f"no bundled model named {name!r} in {root} (installed: {names or 'none'})")
    return root / name


def default_model_name() -> str:
    """The one bundled model installed; none or several is an error that says what to give instead."""
    root = bundled_models_dir()
    names = bundled_model_names(root)
    if len(names) == 1:
        return names[0]
    if not names:
        raise BundleError(
            f"no ckpt_path given and no bundled model is installed in {root}: give ckpt_path=<a best.ckpt> "
            f"(or set {BUNDLED_MODELS_ENV} to a folder of bundled models)"
        )
    raise BundleError(
        f"no ckpt_path given and {len(names)} bundled models are installed: give ckpt_path=bundled:NAME, "
        f"NAME one of {names}"
    )


def bundled_name(ckpt_path: str | Path) -> str | None:
    """The bundle a ckpt_path names (``bundled:<name>``), or None for a checkpoint file."""
    text = str(ckpt_path)
    return text.removeprefix(BUNDLED_PREFIX) if text.startswith(BUNDLED_PREFIX) else None


def weights_file(ckpt_path: str | Path) -> Path:
    """The file holding a ckpt_path's weights: the checkpoint itself, or the bundle's weights.safetensors."""
    name = bundled_name(ckpt_path)
    return Path(ckpt_path) if name is None else bundle_folder(name) / WEIGHTS_FILE


def load_network(ckpt_path: str | Path) -> tuple[nn.Module, RunInfo]:
    """The trained network in eval mode and its run info, from a checkpoint file or ``bundled:<name>``."""
    name = bundled_name(ckpt_path)
    if name is None:
        return network_from_checkpoint(ckpt_path)
    folder = bundle_folder(name)
    weights, card = read_bundle(folder)
    info = RunInfo.from_payload(card["run_info"], folder / CARD_JSON)
    log.info("Using the bundled model %s (%s): %s", name, folder, card["summary"])
    return build_network(info, weights, f"bundled model {folder / WEIGHTS_FILE}"), info


def read_card(folder: Path) -> dict[str, Any]:
    """A bundle's card.json, checked: a BundleError names the file and what is wrong with it."""
    path = folder / CARD_JSON
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"bundled model card {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"bundled model card {path}: unreadable or not JSON ({error})") from None
    _check_card(card, path)
    return card


def _check_card(card: Any, path: Path) -> None:
    if not isinstance(card, dict):
        raise BundleError(f"bundled model card {path}: not a JSON object")
    missing = [key for key in CARD_KEYS if key not in card]
    if missing:
        raise BundleError(f"bundled model card {path}: lacks {missing}")
    RunInfo.from_payload(card["run_info"], path)


def read_bundle(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A bundle's weights and checked card; weights that are not the card's (another SHA-256) are refused."""
    card = read_card(folder)
    path = folder / WEIGHTS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"bundled model weights {path}: no such file") from None
    if hashlib.sha256(data).hexdigest() != card["weights_sha256"]:
        raise BundleError(
            f"bundled model weights {path}: not the weights its card {folder / CARD_JSON} describes (another SHA-256)"
        )
    try:
        return load_tensors(data), card
    except SafetensorError as error:
        raise BundleError(f"bundled model weights {path}: not a safetensors file ({error})") from None


def write_bundle(
    folder: Path, weights: dict[str, torch.Tensor], card: dict[str, Any], markdown: str, overwrite: bool = False
) -> dict[str, Any]:
    """Write a bundle as a whole: its files are made in a temporary folder beside ``folder`` and renamed into
    place, so a reader sees the old bundle or the new one. Weights over MAX_WEIGHTS_BYTES are refused, and so is
    an existing ``folder`` unless ``overwrite``. The card written is returned: ``card`` and the weights' SHA-256."""
    data = save_tensors({name: tensor.contiguous() for name, tensor in weights.items()})
    if len(data) > MAX_WEIGHTS_BYTES:
        raise BundleError(
            f"bundled model {folder}: its weights take {len(data):,} bytes, more than the {MAX_WEIGHTS_BYTES:,} "
            "a bundled model may ship"
        )
    if folder.exists() and not overwrite:
        raise BundleError(f"bundled model {folder}: already exists (overwrite it on purpose)")
    card = {**card, "weights_sha256": hashlib.sha256(data).hexdigest()}
    _check_card(card, folder / CARD_JSON)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=TEMPORARY_SUFFIX, dir=folder.parent))
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the mode mkdir would
        (staging / WEIGHTS_FILE).write_bytes(data)
        (staging / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n")
        (staging / CARD_MARKDOWN).write_text(markdown)
        _replace_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def _replace_folder(new: Path, folder: Path) -> None:
    """Rename ``new`` to ``folder``; an existing ``folder`` is moved aside first and removed after."""
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", suffix=TEMPORARY_SUFFIX, dir=folder.parent))
        os.replace(folder, old / folder.name)
    os.replace(new, folder)
    if old is not None:
        shutil.rmtree(old)
