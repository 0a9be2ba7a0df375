"""The report's figures: each group's per-epoch curves as bands, and each run's final val and test IoU.

The val IoU curve is epochs.csv's ``val_IoU``, scored during the fit at threshold 0.5; the tables' ``val_IoU`` is
at the threshold chosen after training. One name, one meaning: the curve is called ``val_IoU@0.5`` here.

A group's curve is the mean over its runs (its seeds) at each epoch, in a band from their min to their max.
Readable at the size of a real study: only the best ``HIGHLIGHTED`` groups (in the ranking's order) have a
colour and a legend entry; every other group is a faint grey band without one, however many there are.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from ..utils.atomic import write_atomic
from .group_table import setting_cell
from .replicates import Group, column_name
from .runs import Run
from .table import job_cell

VAL_IOU_CURVES_PNG, LOSS_CURVES_PNG, FINAL_IOU_PNG = "val_iou_curves.png", "loss_curves.png", "final_iou.png"
CURVE_METRIC = "val_IoU@0.5"
# What each curve key of epochs.csv is called on the figures.
CURVE_TITLES = {"val_IoU": CURVE_METRIC, "train_loss": "train_loss", "val_loss": "val_loss"}
HIGHLIGHTED = 5
FAINT = "#9a9a9a"


@dataclass(frozen=True)
class Band:
    """One group's curve: the epochs, and the mean, min and max over its runs at each."""

    epochs: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def group_band(group: Group, key: str) -> Band | None:
    """The band of ``key`` over the group's runs that have it (a running run adds the epochs it has done)."""
    by_epoch: dict[int, list[float]] = {}
    for run in group.runs:
        for epoch, value in run.curves.get(key, []):
            by_epoch.setdefault(epoch, []).append(value)
    if not by_epoch:
        return None
    epochs = sorted(by_epoch)
    values = [np.array(by_epoch[epoch]) for epoch in epochs]
    return Band(
        np.array(epochs),
        np.array([v.mean() for v in values]),
        np.array([v.min() for v in values]),
        np.array([v.max() for v in values]),
    )


def group_label(group: Group) -> str:
    """The group's key and the settings that tell it from the others (``lr=0.001``-style, short)."""
    settings = ", ".join(f"{column_name(key)}={setting_cell(key, value)}" for key, value in group.settings.items())
    seeds = f"n={group.n}" if group.n == len(group.runs) else f"n={group.n}/{len(group.runs)}"
    return f"{group.key}: {settings} ({seeds})" if settings else f"{group.key} ({seeds})"


def plot_group_curves(groups: list[Group], path: Path, keys: Sequence[str] = ("val_IoU",)) -> Path:
    return _save(group_curves_figure(groups, keys), path, legend_below=True)


def group_curves_figure(groups: list[Group], keys: Sequence[str]) -> plt.Figure:
    """One panel per curve key, every group a band: the first ``HIGHLIGHTED`` groups with a curve in colour
    and in the legend (best first), the others faint; a note in a panel no run has values for yet."""
    fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys) + 2.5, 4.8), squeeze=False)
    drawn = [group for group in groups if any(group_band(group, key) for key in keys)]
    highlighted = drawn[:HIGHLIGHTED]
    colours = plt.get_cmap("tab10").colors
    for ax, key in zip(axes[0], keys):
        bands = [group_band(group, key) for group in drawn]
        for band in bands[HIGHLIGHTED:]:
            if band is not None:
                ax.fill_between(band.epochs, band.low, band.high, color=FAINT, alpha=0.08, linewidth=0)
                ax.plot(band.epochs, band.mean, color=FAINT, alpha=0.35, linewidth=0.8)
        for rank, band in reversed(list(enumerate(bands[:HIGHLIGHTED]))):
            if band is not None:
                colour = colours[rank % len(colours)]
                ax.fill_between(band.epochs, band.low, band.high, color=colour, alpha=0.18, linewidth=0)
                ax.plot(band.epochs, band.mean, color=colour, linewidth=2, marker="o", markersize=3)
        if not any(band is not None for band in bands):
            ax.text(0.5, 0.5, f"no per-epoch {CURVE_TITLES[key]} yet", ha="center", va="center", transform=ax.transAxes)
        ax.set(xlabel="epoch", ylabel=CURVE_TITLES[key], title=f"{CURVE_TITLES[key]} per epoch")
        if key == "val_IoU":
            ax.set(ylim=(0, 1), title=f"{CURVE_METRIC} per epoch (threshold 0.5)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if highlighted:
        handles = [
            plt.Line2D([], [], color=colours[rank % len(colours)], linewidth=2) for rank in range(len(highlighted))
        ]
        labels = [group_label(group) for group in highlighted]
        if len(drawn) > HIGHLIGHTED:
            handles.append(plt.Line2D([], [], color=FAINT, linewidth=1))
            labels.append(f"{len(drawn) - HIGHLIGHTED} other group(s)")
        fig.legend(
            handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=min(len(labels), 2), frameon=False
        )
    fig.suptitle("Mean over each group's runs, band from min to max; the best groups in colour")
    return fig


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


def _save(fig: plt.Figure, path: Path, legend_below: bool = False) -> Path:
    """Atomically; with ``legend_below`` the picture grows to take in a legend drawn below the axes."""
    bbox = "tight" if legend_below else None
    try:
        fig.tight_layout()
        return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches=bbox))
    finally:
        plt.close(fig)
