"""`retina-seg-predict`'s work: every input through loader workers, the network and the writers."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch.utils.data import DataLoader

from ..data.scale import ScaleRule, to_size, training_scale
from ..scoring.counts import Counts, confusion, pooled
from .inputs import NameIndex, output_names, resolve_inputs
from .photographs import FailedInput, MaskSources, Photograph, PhotographDataset
from .predictor import VesselPredictor
from .settings import PredictSettings
from .tiling import TilePlan
from .writers import claim_output, clear_predictions, write_prediction, write_scores, write_summary

log = logging.getLogger(__name__)


def _progress_bar(shown: bool) -> Progress:
    """Images done so far, on stderr so that stdout keeps only the summary; a hidden bar writes nothing."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not shown,
    )


def _as_list(batch: list) -> list:
    """Inputs differ in size, so a loader batch stays a list."""
    return batch


def full_size_mask(probability: np.ndarray, fov: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The network's probabilities at the FOV's (the photograph's) size, zero outside the FOV, and the mask."""
    probability = to_size(probability, *fov.shape)
    probability[~fov] = 0
    return probability, probability >= threshold


class PredictionRun:
    """Predicts and writes one loader batch at a time, keeping the records the summary lists."""

    def __init__(self, settings: PredictSettings, predictor: VesselPredictor):
        self.settings, self.predictor = settings, predictor
        self.predicted: list[dict[str, Any]] = []
        self.failed: list[dict[str, str]] = []
        self.scores: list[tuple[str, Counts]] = []

    def fail(self, source: Path, error: str) -> None:
        self.failed.append({"input": str(source), "error": error})
        log.error("failed: %s", error)

    def planned(self, batch: list[Photograph | FailedInput]) -> tuple[list[Photograph], list[TilePlan]]:
        """The loaded photographs with their windows; failed loads and unusable sizes are recorded."""
        photos, plans = [], []
        for item in batch:
            if isinstance(item, FailedInput):
                self.fail(item.source, item.error)
                continue
            try:
                plans.append(
                    self.predictor.plan(
                        item.network_image,
                        item.plan_kind,
                        self.settings.tiling.tile_size,
                        self.settings.tiling.tile_overlap,
                    )
                )
                photos.append(item)
            except ValueError as error:
                self.fail(item.source, f"{item.source}: {error}")
        return photos, plans

    def process(self, batch: list[Photograph | FailedInput]) -> None:
        photos, plans = self.planned(batch)
        if not photos:
            return
        try:
            maps = self.predictor.probabilities([p.network_image for p in photos], [p.tables for p in photos], plans)
        except Exception as error:  # one failing forward pass fails its batch, not the run
            for photo in photos:
                self.fail(photo.source, f"{photo.source}: prediction failed: {type(error).__name__}: {error}")
            return
        for photo, probability in zip(photos, maps):
            try:
                self.finish(photo, probability)
            except (OSError, ValueError) as error:
                self.fail(photo.source, f"{photo.source}: writing its outputs failed: {error}")

    def finish(self, photo: Photograph, probability: np.ndarray) -> None:
        """Back to the photograph's size, zero outside the FOV, threshold, write, score."""
        probability, mask = full_size_mask(probability, photo.fov, self.predictor.threshold)
        outputs = write_prediction(
            self.settings.output,
            photo.name,
            photo.image,
            probability,
            mask,
            self.settings.overlay_color,
            self.settings.overlay_alpha,
        )
        record = {
            "input": str(photo.source),
            "height": photo.image.shape[0],
            "width": photo.image.shape[1],
            "plan": photo.plan_kind,
            "fov": photo.fov_source,
            "fov_diameter": photo.fov_diameter,
            "scale": round(photo.scale, 6),
            "network_size": list(photo.network_image.shape[:2]),
            "outputs": outputs,
        }
        if photo.truth is not None:
            # Every pixel counts: the mask is empty outside the FOV, so this is the in-FOV score wherever the truth
            # has no vessels outside it (as in DRIVE), and any that it has count as missed.
            counts = confusion(mask, photo.truth)
            self.scores.append((photo.name, counts))
            record.update(IoU=counts.iou, Dice=counts.dice)
        self.predicted.append(record)


def _scale_rule(settings: PredictSettings, predictor: VesselPredictor) -> tuple[ScaleRule, str]:
    """The training scale in auto mode; whole, tiles and resize never rescale by it."""
    if not settings.tiling.scale_aware:
        return ScaleRule(None), f"mode={settings.tiling.mode}: not scale-aware"
    return training_scale(
        predictor.info.fov_diameter, settings.scale.train_fov_diameter, settings.scale.tolerance, settings.ckpt_path
    )


def _mask_sources(settings: PredictSettings, truth_rule: str) -> MaskSources:
    return MaskSources(
        fov=NameIndex(settings.fov_masks, "FOV mask") if settings.fov_masks else None,
        truth=NameIndex(settings.masks, "ground-truth mask") if settings.masks else None,
        detect_fov=settings.detect_fov,
        truth_rule=truth_rule,
    )


def predict_files(settings: PredictSettings) -> dict[str, Any]:
    """Predict every input into settings.output; returns (and writes) the summary. Bad inputs, a bad checkpoint
    or a mask folder that is not one raise before anything is predicted; a bad image only fails itself. An output
    folder holding files is refused unless settings.overwrite, and then its earlier prediction is removed once
    the checkpoint and the inputs are usable."""
    earlier = claim_output(settings.output, settings.overwrite)
    predictor = VesselPredictor.from_checkpoint(
        settings.ckpt_path,
        threshold=settings.threshold,
        batch_size=settings.batch_size,
        channels_last=settings.channels_last,
        flip_tta=settings.flip_tta,
        device=settings.device,
    )
    inputs = resolve_inputs(settings.inputs)
    for path in inputs.skipped:
        log.warning("skipped %s: not an image file name (%s)", path, path.suffix or "no extension")
    rule, scale_source = _scale_rule(settings, predictor)
    dataset = PhotographDataset(
        inputs.images,
        output_names(inputs.images),
        predictor.normalize,
        settings.tiling,
        _mask_sources(settings, predictor.info.mask_rule),
        rule,
        predictor.colour,
    )
    loader = DataLoader(dataset, batch_size=settings.batch_size, num_workers=settings.num_workers, collate_fn=_as_list)
    settings.output.mkdir(parents=True, exist_ok=True)
    if earlier:
        log.warning("overwrite=true: removing the earlier prediction's %d file(s) in %s", len(earlier), settings.output)
        clear_predictions(earlier)
    run = PredictionRun(settings, predictor)
    started = time.monotonic()
    with _progress_bar(settings.progress_bar) as bar:
        task = bar.add_task("predicting", total=len(dataset))
        for batch in loader:
            run.process(batch)
            bar.advance(task, len(batch))
    elapsed = time.monotonic() - started
    if run.scores:
        write_scores(settings.output, run.scores)
    summary = {
        "checkpoint": str(settings.ckpt_path),
        "threshold": predictor.threshold,
        "threshold_source": "checkpoint" if settings.threshold is None else "override",
        "mode": settings.tiling.mode,
        "train_fov_diameter": rule.train_fov_diameter,
        "scale_source": scale_source,
        "colour": predictor.info.colour,
        "device": settings.device,
        "predicted": len(run.predicted),
        "failed": run.failed,
        "skipped": [str(p) for p in inputs.skipped],
        "wall_time_s": round(elapsed, 3),
        "images_per_s": round(len(run.predicted) / elapsed, 3) if elapsed > 0 else None,
        "overall": _overall(run.scores),
        "images": run.predicted,
    }
    write_summary(settings.output, summary)
    return summary


def _overall(scores: list[tuple[str, Counts]]) -> dict[str, float] | None:
    if not scores:
        return None
    total = pooled([counts for _, counts in scores])
    return {"IoU": total.iou, "Dice": total.dice}
