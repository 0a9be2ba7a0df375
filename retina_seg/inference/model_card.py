"""The model card shipped with an export (JSON for programs, Markdown for people), from the checkpoint and the
training run folder that produced it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from torch import nn

from ..models.unet import count_parameters
from ..records.checkpoint import RunInfo
from ..records.run_folder import METRICS_JSON, read_metrics

# The base name of each metric in metrics.json (f"{split}_{name}", "_all" for all pixels instead of the FOV).
METRIC_DEFINITIONS = {
    "IoU": "TP / (TP + FP + FN) of the vessel class at the threshold, pixels pooled over the whole split",
    "Dice": "2 TP / (2 TP + FP + FN) (= F1) of the vessel class at the threshold, pixels pooled over the split",
    "AUC": "area under the ROC curve of the vessel probabilities (1000-bin histogram)",
    "accuracy": "(TP + TN) / all pixels at the threshold",
    "sensitivity": "TP / (TP + FN) at the threshold",
    "specificity": "TN / (TN + FP) at the threshold",
    "precision": "TP / (TP + FP) at the threshold",
    "clDice": "centreline Dice: agreement of each mask's skeleton with the other mask",
    "loss": "the training loss on the split",
}
# How a program opens each export. TorchScript is deprecated since torch 2.13: it is exported only while torch
# still loads it, and the .pt2 program (torch.export) is its replacement.
LOADING = {
    "pt2": "torch.export.load(path).module()",
    "onnx": "onnxruntime.InferenceSession(path)",
    "safetensors": "safetensors.torch.load_file(path) into the architecture below",
    "torchscript": "torch.jit.load(path) (deprecated since torch 2.13; prefer the .pt2 program)",
}
REGION_NOTE = (
    "Computed inside the field of view (FOV); a name ending in _all counts all pixels. A ratio with a "
    "zero denominator is 1.0."
)
_METRIC_KEY = re.compile(r"^(val|test)_([A-Za-z]+)(_all)?$")

NORMALIZATION_WORDS = {
    "standard": "per channel: (pixel / max_pixel_value - mean) / std, with the mean, std and max_pixel_value shown",
    "image": "(pixel - mean) / (std + 1e-4), mean and std over all pixels and channels of the image, clipped "
    "to [-20, 20]",
    "image_per_channel": "per channel: (pixel - mean) / (std + 1e-4), mean and std of that channel over the whole "
    "image, clipped to [-20, 20]",
    "min_max": "(pixel - min) / (max - min + 1e-4), min and max over the whole image, clipped to [-20, 20]",
    "min_max_per_channel": "per channel: (pixel - min) / (max - min + 1e-4), min and max of that channel over "
    "the whole image",
}


def read_run(run_dir: Path) -> dict[str, Any] | None:
    """The training run's metrics.json, or None when the folder has none (a checkpoint copied elsewhere)."""
    return read_metrics(run_dir) if (run_dir / METRICS_JSON).is_file() else None


def _metrics(run: dict[str, Any]) -> dict[str, Any]:
    values = {
        key: value
        for key, value in run.items()
        if _METRIC_KEY.match(key) and isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    names = {_METRIC_KEY.match(key).group(2) for key in values}
    return {
        "values": values,
        "definitions": {n: METRIC_DEFINITIONS[n] for n in sorted(names) if n in METRIC_DEFINITIONS},
        "region": REGION_NOTE,
    }


def _training(run: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    config = run.get("config") or {}
    data = config.get("data") or {}
    source = data.get("source") or {}
    return {
        "run_dir": str(run_dir),
        "job_id": run.get("job_id"),
        "git_commit": run.get("git_commit"),
        "data_source": source.get("_target_"),
        "data": source,
        "split": {key: source.get(key) for key in ("split", "n_val", "split_seed") if key in source},
        "channels": data.get("channels"),
        "augmentation": data.get("augmentation"),
        "epochs": run.get("epochs"),
        "best_epoch": run.get("best_epoch"),
        "batch_size": run.get("batch_size"),
        "learning_rate": run.get("learning_rate"),
        "wall_time_s": run.get("wall_time_s"),
    }


def _threshold(info: RunInfo, run: dict[str, Any] | None) -> dict[str, Any]:
    fixed = (((run or {}).get("config") or {}).get("module") or {}).get("threshold")
    if run is None:
        how = "as stored in the checkpoint"
    elif fixed is not None:
        how = "fixed in the training config (module.threshold)"
    else:
        how = "chosen on the validation split to maximise val_IoU"
    return {
        "value": float(info.threshold),
        "how": how,
        "rule": "a pixel is a vessel when its probability >= the threshold",
    }


def _scale(info: RunInfo) -> dict[str, Any]:
    diameter = info.fov_diameter
    how = (
        "data.fov_diameter where the run set it (training photographs resized to it), else the median over the "
        "training photographs; a FOV's diameter is the longer side of its bounding box"
        if diameter is not None
        else "unknown: the checkpoint was written before the diameter was stored"
    )
    return {
        "fov_diameter": diameter,
        "how": how,
        "use": "rescale a photograph by fov_diameter / its own FOV diameter before predicting, and the "
        "probabilities back to its size (retina-seg-predict mode=auto does this)",
    }


def _colour(info: RunInfo) -> dict[str, Any]:
    if not info.colour:
        return {"standard": None, "use": "photographs as photographed"}
    return {
        "standard": info.colour,
        "use": "before resizing and normalising, map each channel of the whole photograph linearly so that its "
        "mean and standard deviation inside the FOV become the standard's mean and std (RGB, 0-255), round and clip "
        "to uint8, and set the pixels outside the FOV to 0 (retina-seg-predict does this; "
        "retina_seg.data.colour.ColourStandard.apply)",
    }


def build_card(
    checkpoint: Path, checkpoint_sha256: str, net: nn.Module, info: RunInfo, run_dir: Path, exports: dict[str, Any]
) -> dict[str, Any]:
    run = read_run(run_dir)
    mode = info.normalize.get("normalization", "standard")
    channels = "3 channels R, G, B" if info.channels == "rgb" else "1 channel: green"
    return {
        "name": "retina-seg U-Net for retinal vessel segmentation",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "checkpoint": {"path": str(checkpoint), "sha256": checkpoint_sha256, "bytes": checkpoint.stat().st_size},
        "architecture": {
            "class": info.model.get("_target_"),
            "parameters": count_parameters(net),
            "config": info.model,
            "input": f"float32 [batch, {1 if info.channels == 'green' else 3}, height, width] "
            f"({channels}), any height and width of at least "
            f"{getattr(net, 'min_side', 1)} pixels, normalised as below",
            "output": "float32 [batch, 1, height, width]: vessel probability per pixel",
        },
        "input_normalization": {
            "albumentations": info.normalize,
            "mode": mode,
            "formula": NORMALIZATION_WORDS.get(mode, mode),
            "then": f"keep {channels}; layout channels first",
        },
        "threshold": _threshold(info, run),
        "scale": _scale(info),
        "colour": _colour(info),
        "training": _training(run, run_dir) if run else None,
        "metrics": _metrics(run) if run else None,
        "config": run.get("config") if run else None,
        "exports": {kind: {**export, "load": LOADING[kind]} for kind, export in exports.items()},
    }


def _rows(mapping: dict[str, Any]) -> list[str]:
    return [
        f"| {key} | {json.dumps(value) if isinstance(value, (dict, list)) else value} |"
        for key, value in mapping.items()
    ]


def render_markdown(card: dict[str, Any]) -> str:
    arch, norm, threshold = card["architecture"], card["input_normalization"], card["threshold"]
    lines = [
        f"# {card['name']}",
        "",
        f"Created {card['created']} from checkpoint `{card['checkpoint']['path']}`",
        f"(SHA-256 `{card['checkpoint']['sha256']}`).",
        "",
        "## Architecture",
        "",
        f"`{arch['class']}` with {arch['parameters']:,} trainable parameters.",
        "",
        "| setting | value |",
        "|---|---|",
        *_rows({k: v for k, v in arch["config"].items() if k != "_target_"}),
        "",
        f"- Input: {arch['input']}.",
        f"- Output: {arch['output']}.",
        "",
        "## Input normalisation",
        "",
        f"albumentations `Normalize` {json.dumps(norm['albumentations'])}: {norm['formula']}; then {norm['then']}.",
        "",
        "## Threshold",
        "",
        f"{threshold['value']:.4f}, {threshold['how']}; {threshold['rule']}.",
        "",
        "## Scale",
        "",
        f"Training FOV diameter: {card['scale']['fov_diameter']} pixels ({card['scale']['how']}). To predict, "
        f"{card['scale']['use']}.",
        "",
        "## Colour",
        "",
        f"Standard: {json.dumps(card['colour']['standard'])}. To predict, {card['colour']['use']}.",
        "",
    ]
    training = card["training"]
    lines += ["## Training data and split", ""]
    if training is None:
        lines += ["Unknown: no metrics.json in the run folder given for this checkpoint.", ""]
    else:
        lines += [
            "| item | value |",
            "|---|---|",
            *_rows({k: v for k, v in training.items() if k != "augmentation"}),
            "",
        ]
    if card["metrics"]:
        metrics = card["metrics"]
        lines += [
            "## Metrics",
            "",
            metrics["region"],
            "",
            "| metric | value |",
            "|---|---|",
            *_rows({k: f"{v:.4f}" for k, v in metrics["values"].items()}),
            "",
            "Definitions:",
            "",
            *[f"- **{name}**: {text}." for name, text in metrics["definitions"].items()],
            "",
        ]
    lines += [
        "## Exports",
        "",
        "| format | file | load with | SHA-256 | max abs difference from PyTorch |",
        "|---|---|---|---|---|",
        *[
            f"| {kind} | {e['file']} | `{e['load']}` | `{e['sha256']}` | {e['parity_max_abs_diff']} |"
            for kind, e in card["exports"].items()
        ],
        "",
    ]
    if card["config"]:
        lines += ["## Resolved training config", "", "```json", json.dumps(card["config"], indent=2), "```", ""]
    return "\n".join(lines)
