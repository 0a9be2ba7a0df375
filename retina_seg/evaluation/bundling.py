"""A best.ckpt made into a bundled model (records/bundle.py): its weights, and a card whose test scores are
measured here, by retina-seg-eval's own scoring of the checkpoint on each data config given."""

import hashlib
import logging
import os
import platform
import shlex
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from ..config_rules import check_config
from ..config_schemas import EVAL_RULES
from ..launch.composition import compose_config, run_config
from ..launch.resources import cpu_model
from ..models.unet import count_parameters
from ..records.bundle import write_bundle
from ..records.checkpoint import network_from_checkpoint
from ..records.run_folder import metrics_or_none
from .checkpoint_eval import evaluate

log = logging.getLogger(__name__)

# The card's scores per test set (retina-seg-eval's strict protocol: pixels pooled inside the FOV).
CARD_SCORES = ("Dice", "IoU", "AUC", "clDice")


@dataclass(frozen=True)
class BundleRequest:
    checkpoint: Path
    name: str
    folder: Path  # where the bundle is written: <bundled models folder>/<name>
    test_sets: dict[str, str]  # a label (DRIVE, STARE, ...) -> retina-seg-eval overrides selecting its test split
    retrain_command: str
    summary: str | None = None  # the card's one line; None: made from the sources and the scores
    sources: tuple[str, ...] = ()  # the training sets; empty: read from the run folder's config
    overwrite: bool = False


def bundle_checkpoint(request: BundleRequest) -> dict[str, Any]:
    """Score the checkpoint on each test set, then write the bundle (weights and card) as a whole; the card."""
    net, info = network_from_checkpoint(request.checkpoint)
    scores = {label: test_scores(request.checkpoint, overrides) for label, overrides in request.test_sets.items()}
    run = metrics_or_none(request.checkpoint.resolve().parents[1]) or {}
    sources = list(request.sources) or training_sources(run)
    card = {
        "name": request.name,
        "summary": request.summary or summary_line(request.name, sources, info.fov_diameter, scores),
        "sources": sources,
        "fov_diameter": info.fov_diameter,
        "threshold": info.threshold,
        "test_scores": scores,
        "test_sets": dict(request.test_sets),
        "retrain_command": request.retrain_command,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "checkpoint_sha256": hashlib.sha256(request.checkpoint.read_bytes()).hexdigest(),
        "git_commit": run.get("git_commit"),
        "parameters": count_parameters(net),
        "run_info": info.to_payload(),
    }
    card = write_bundle(request.folder, net.state_dict(), card, render_card(card), request.overwrite)
    log.info("Bundled %s as %s: %s", request.checkpoint, request.folder, card["summary"])
    return card


def test_scores(checkpoint: Path, overrides: str) -> dict[str, float]:
    """retina-seg-eval's scores of the checkpoint on the test split the overrides select (CARD_SCORES)."""
    with tempfile.TemporaryDirectory(prefix="retina-seg-bundle-") as scratch:
        command_line = [f"ckpt_path={checkpoint}", *shlex.split(overrides), "split=test", f"paths.output_dir={scratch}"]
        cfg = run_config(compose_config("eval", command_line))
        check_config(cfg, EVAL_RULES)
        record = evaluate(cfg, Path(scratch))
    return {name: record[f"test_{name}"] for name in CARD_SCORES if f"test_{name}" in record}


def training_sources(run: dict[str, Any]) -> list[str]:
    """The data sources the run trained on: metrics.json's data_sources (data=multi), else as its resolved config
    names its one source (DriveSource -> Drive)."""
    if run.get("data_sources"):
        return sorted(run["data_sources"])
    data = (run.get("config") or {}).get("data") or {}
    return sorted({target.rsplit(".", 1)[-1].removesuffix("Source") for target in _source_targets(data)})


def _source_targets(config: Any) -> list[str]:
    if isinstance(config, dict):
        own = [str(config["_target_"])] if str(config.get("_target_", "")).endswith("Source") else []
        return own + [target for value in config.values() for target in _source_targets(value)]
    if isinstance(config, list):
        return [target for value in config for target in _source_targets(value)]
    return []


def summary_line(name: str, sources: list[str], fov_diameter: float | None, scores: dict[str, dict]) -> str:
    dice = ", ".join(f"{label} {values['Dice']:.3f}" for label, values in scores.items() if "Dice" in values)
    return (
        f"{name}: U-Net trained on {' + '.join(sources) or 'unknown data'}, FOV diameter {fov_diameter} px; "
        f"test Dice {dice or 'not measured'}"
    )


def machine() -> dict[str, Any]:
    """Where the bundle was made and its scores measured."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def colour_line(colour: dict[str, Any] | None) -> str:
    """How the model wants a photograph's colours, in words (RunInfo.colour)."""
    if not colour:
        return "as photographed"
    return (
        f"{colour['mode']}: each channel mapped inside the FOV to mean {colour['mean']} and standard deviation "
        f"{colour['std']} (RGB, 0-255) before predicting"
    )


def test_set_lines(name: str, test_sets: dict[str, str]) -> list[str]:
    """How each row of the card's scores is measured again, as a retina-seg-eval command."""
    if not test_sets:
        return []
    commands = [f"retina-seg-eval ckpt_path=bundled:{name} {overrides} split=test" for overrides in test_sets.values()]
    return ["Measured again by:", "", "```", *commands, "```", ""]


def render_card(card: dict[str, Any]) -> str:
    """card.md: the card for people."""
    rows = [
        f"| {label} | " + " | ".join(f"{values[name]:.4f}" if name in values else "-" for name in CARD_SCORES) + " |"
        for label, values in card["test_scores"].items()
    ]
    return "\n".join(
        [
            f"# Bundled model `{card['name']}`",
            "",
            card["summary"],
            "",
            f"- Trained on: {', '.join(card['sources']) or 'unknown'}",
            f"- Training FOV diameter: {card['fov_diameter']} px (photographs are rescaled to it before predicting)",
            f"- Colour: {colour_line(card['run_info'].get('colour'))}",
            f"- Threshold: {card['threshold']:.4f} (a pixel is a vessel when its probability is at least this)",
            f"- Parameters: {card['parameters']:,}",
            f"- Made {card['created']} on {card['machine']['cpu']} ({card['machine']['cores']} cores, "
            f"torch {card['machine']['torch']}), from a checkpoint of SHA-256 `{card['checkpoint_sha256']}`",
            "",
            "## Test scores (first observer, pixels pooled inside the FOV)",
            "",
            "| test set | " + " | ".join(CARD_SCORES) + " |",
            "|---|" + "---|" * len(CARD_SCORES),
            *rows,
            "",
            *test_set_lines(card["name"], card["test_sets"]),
            "## Retrain it",
            "",
            "```",
            card["retrain_command"],
            "```",
            "",
        ]
    )
