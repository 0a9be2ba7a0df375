"""The run's progress plot: loss and IoU curves per epoch, as nnU-Net leaves one in every run folder."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ..utils.atomic import write_atomic


def plot_progress(rows: list[dict], path: Path) -> Path:
    """Left axis: train and val loss; right axis: val IoU and Dice."""
    fig, loss_ax = plt.subplots(figsize=(8, 4.5))
    epochs = [r["epoch"] for r in rows]
    for key, style in (("train_loss", "b-"), ("val_loss", "r.-")):
        loss_ax.plot(epochs, [r.get(key) for r in rows], style, label=key)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    score_ax = loss_ax.twinx()
    for key, style in (("val_IoU", "g.-"), ("val_Dice", "g.:")):  # markers: val may skip epochs
        score_ax.plot(epochs, [r.get(key) for r in rows], style, label=key)
    score_ax.set_ylabel("score")
    score_ax.set_ylim(0, 1)
    handles = loss_ax.get_legend_handles_labels()[0] + score_ax.get_legend_handles_labels()[0]
    loss_ax.legend(handles, [h.get_label() for h in handles], loc="center right")
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path
