"""Prediction outputs, each written atomically: mask, 16-bit probability map, overlay, scores, summary."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2  # installed with albumentations
import numpy as np

from ..config_rules import ConfigError
from ..scoring.counts import Counts, pooled
from ..utils.atomic import write_atomic, write_json_atomic, write_text_atomic
from ..utils.folder_lock import LOCK_FILE

MASK_SUFFIX, PROBABILITY_SUFFIX, OVERLAY_SUFFIX = "_mask.png", "_prob.png", "_overlay.png"
SCORES_CSV, SUMMARY_JSON = "scores.csv", "predictions.json"
SCORE_COLUMNS = ("image", "IoU", "Dice", "TP", "FP", "FN")
OVERALL_ROW = "overall"
# Hydra's log of the command, written into its output folder (the default `output`) before any prediction.
PREDICT_LOG = "predict.log"
# PNG encoding: zlib's fastest level with run-length matching, each row stored as its difference from the row
# above. Same pixels; on a 3504x2336 photograph about 5x faster than PIL's defaults (adaptive filters, level 6),
# with the overlay as small and the probability map about 8% larger (benchmarks/latency.py, docs/results.md).
PNG_SETTINGS = (
    cv2.IMWRITE_PNG_COMPRESSION,
    1,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_RLE,
    cv2.IMWRITE_PNG_FILTER,
    cv2.IMWRITE_PNG_FILTER_UP,
)


def _save_png(path: Path, pixels: np.ndarray) -> None:
    """Grey (8 or 16 bits) or RGB pixels as a PNG, written atomically."""
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    encoded, data = cv2.imencode(".png", pixels, PNG_SETTINGS)
    if not encoded:
        raise ValueError(f"{path}: cv2 could not encode {pixels.dtype} {pixels.shape} pixels as PNG")
    write_atomic(path, lambda tmp: tmp.write_bytes(data.tobytes()))


def probability_pixels(probability: np.ndarray) -> np.ndarray:
    """uint16 0..65535 for probability 0..1 (a step of 1.5e-5, finer than any threshold grid)."""
    return np.rint(probability * 65535).astype(np.uint16)


def overlay_pixels(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int], alpha: float) -> np.ndarray:
    """The photograph with vessel pixels blended towards `color` (only those pixels are touched).

    Each channel's 256 blended levels are computed once and looked up (cv2.LUT), and copied through the mask,
    instead of a float copy of every vessel pixel at full size."""
    levels = np.arange(256, dtype=np.float32)[:, None]
    table = np.rint(levels * (1 - alpha) + np.asarray(color, dtype=np.float32) * alpha).astype(np.uint8)
    blended = image.copy()
    cv2.copyTo(cv2.LUT(image, table.reshape(256, 1, 3)), mask.view(np.uint8), blended)
    return blended


def write_prediction(
    output: Path,
    name: str,
    image: np.ndarray,
    probability: np.ndarray,
    mask: np.ndarray,
    color: tuple[int, int, int],
    alpha: float,
) -> dict[str, str]:
    """The three images of one prediction, at the input's size; returns their paths."""
    paths = {
        "mask": output / f"{name}{MASK_SUFFIX}",
        "probability": output / f"{name}{PROBABILITY_SUFFIX}",
        "overlay": output / f"{name}{OVERLAY_SUFFIX}",
    }
    pixels = {
        "mask": lambda: mask.view(np.uint8) * np.uint8(255),
        "probability": lambda: probability_pixels(probability),
        "overlay": lambda: overlay_pixels(image, mask, color, alpha),
    }
    # cv2 releases the GIL while it encodes: the three files compress on as many cores.
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        for done in [pool.submit(lambda kind=kind: _save_png(paths[kind], pixels[kind]())) for kind in paths]:
            done.result()
    return {kind: str(path) for kind, path in paths.items()}


def write_scores(output: Path, rows: list[tuple[str, Counts]]) -> Path:
    """scores.csv: one row per scored image, then `overall` from the pixel counts of all of them."""
    total = pooled([counts for _, counts in rows])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(SCORE_COLUMNS)
    for name, counts in [*rows, (OVERALL_ROW, total)]:
        writer.writerow([name, f"{counts.iou:.6f}", f"{counts.dice:.6f}", counts.tp, counts.fp, counts.fn])
    return write_text_atomic(output / SCORES_CSV, buffer.getvalue())


def write_summary(output: Path, summary: dict[str, Any]) -> Path:
    return write_json_atomic(output / SUMMARY_JSON, summary)


def _is_prediction_file(path: Path) -> bool:
    """A file an earlier prediction wrote: its summary, its scores or one of an image's three outputs."""
    if path.name in (SUMMARY_JSON, SCORES_CSV):
        return True
    return path.name.endswith((MASK_SUFFIX, PROBABILITY_SUFFIX, OVERLAY_SUFFIX))


def claim_output(output: Path, overwrite: bool) -> list[Path]:
    """The output folder's files this prediction would mix with, checked before any work: refused unless
    ``overwrite``; with it, the earlier prediction's files (returned) are removed by ``clear_predictions``.
    Subfolders (Hydra's ``.hydra/``, a run folder inside it), Hydra's ``predict.log`` and the lock this command
    holds on its own folder (the default output is that folder) are not looked at."""
    ours = (PREDICT_LOG, LOCK_FILE)
    present = sorted(p for p in output.iterdir() if p.is_file() and p.name not in ours) if output.is_dir() else []
    if present and not overwrite:
        names = ", ".join(p.name for p in present[:3]) + (", ..." if len(present) > 3 else "")
        raise ConfigError(
            f"output {output}: not empty ({len(present)} file(s): {names}); choose an empty or new folder, "
            "or set overwrite=true to replace the predictions in it"
        )
    return [p for p in present if _is_prediction_file(p)]


def clear_predictions(files: list[Path]) -> None:
    """Remove an earlier prediction's files, so the folder holds only what the new predictions.json lists."""
    for path in files:
        path.unlink(missing_ok=True)
