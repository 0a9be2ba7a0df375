"""The report's two figures: every run's per-epoch val_IoU@0.5 curve, and each run's final val and test IoU.

The curve is epochs.csv's ``val_IoU``, scored during the fit at threshold 0.5; the tables' ``val_IoU`` is at the
threshold chosen after training. One name, one meaning: the curve is called ``val_IoU@0.5`` here.
"""

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from ..utils.atomic import write_atomic
from .runs import Run
from .table import job_cell

VAL_IOU_CURVES_PNG, FINAL_IOU_PNG = "val_iou_curves.png", "final_iou.png"
CURVE_METRIC = "val_IoU@0.5"


def plot_val_iou_curves(runs: list[Run], path: Path, varying: Sequence[str] = ()) -> Path:
    """One line per run with per-epoch values (legend: job id, status and the ``varying`` config keys); a note
    when none has any yet."""
    fig, ax = plt.subplots(figsize=(9, 5))
    drawn = [run for run in runs if run.history]
    for run in drawn:
        epochs, scores = zip(*run.history)
        ax.plot(epochs, scores, marker="o", markersize=3, label=curve_label(run, varying))
    if drawn:
        ax.legend(title="Job id", fontsize="small", ncol=math.ceil(len(drawn) / 20))
    else:
        ax.text(0.5, 0.5, f"no per-epoch {CURVE_METRIC} yet", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="epoch", ylabel=CURVE_METRIC, ylim=(0, 1), title=f"{CURVE_METRIC} per epoch (threshold 0.5)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def curve_label(run: Run, varying: Sequence[str]) -> str:
    settings = ", ".join(f"{key}={run.config[key]}" for key in varying if key in run.config)
    return f"{job_cell(run)}: {settings}" if settings else job_cell(run)


def plot_final_iou(runs: list[Run], path: Path) -> Path:
    """Grouped bars per job id; a value that does not exist has no bar."""
    fig, ax = plt.subplots(figsize=(min(max(6, 0.6 * len(runs) + 2), 40), 5))
    x = np.arange(len(runs))
    for offset, key in ((-0.2, "val_IoU"), (0.2, "test_IoU")):
        heights = [np.nan if run.values.get(key) is None else run.values[key] for run in runs]
        ax.bar(x + offset, heights, width=0.4, label=key)
    crowded = len(runs) > 8
    ax.set_xticks(
        x, [job_cell(run) for run in runs], rotation=45 if crowded else 0, ha="right" if crowded else "center"
    )
    ax.set(xlabel="Job id", ylabel="IoU", ylim=(0, 1), title="val_IoU and test_IoU per job (as in the table)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    try:
        fig.tight_layout()
        return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)
