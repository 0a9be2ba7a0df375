"""Keeps the run folder readable while training runs: per-epoch CSV, progress plot, metrics.json."""

import logging
import math
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ..records.run_folder import PROGRESS_PNG, RunStatus, read_epoch_table, write_epoch_table, write_metrics
from .plots import plot_progress

log = logging.getLogger(__name__)

EPOCH_KEYS = ("train_loss", "val_loss", "val_IoU", "val_Dice", "val_AUC", "val_IoU_all")
# metrics.json is rewritten at least this often during an epoch, so its heartbeat shows the run is alive.
HEARTBEAT_S = 30.0


class RunFolderWriter(pl.Callback):
    """After every epoch: a row in epochs.csv, progress.png, and metrics.json with status "running".

    A killed run therefore still shows how far it got; a resumed run continues the same table.
    ``record`` holds what the pipeline knows about the run (job id, hyperparameters, config).
    ``epochs_done`` counts only epochs whose checkpoints are written (it never runs ahead of last.ckpt), and
    ``heartbeat`` with ``host``/``pid`` lets the report tell a live run from one killed mid-run. The training
    time travels in every checkpoint (this callback's state), so ``wall_time_s`` adds up across resumes.
    """

    def __init__(self, output_dir: str | Path, plot: bool = True):
        self.output_dir, self.plot = Path(output_dir), plot
        self.record: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] = []
        self.validated = False  # did validation run in this epoch (check_val_every_n_epoch may skip it)
        self.earlier_wall_time_s = 0.0  # training time of the processes before this one (from the checkpoint)
        self.started: float | None = None
        self.epochs_done = 0
        self.last_write = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"wall_time_s": self.wall_time_s()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.earlier_wall_time_s = float(state_dict.get("wall_time_s", 0.0))

    def wall_time_s(self) -> float:
        here = 0.0 if self.started is None else time.monotonic() - self.started
        return round(self.earlier_wall_time_s + here, 1)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.monotonic()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.validated = not trainer.sanity_checking

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.rows = [r for r in read_epoch_table(self.output_dir) if r["epoch"] < trainer.current_epoch]
        self.on_train_epoch_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The previous epoch's checkpoints are written by now: it counts as done."""
        self.epochs_done = trainer.current_epoch
        if trainer.is_global_zero:
            self.write_status(RunStatus.RUNNING)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.on_train_epoch_start(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.is_global_zero and time.monotonic() - self.last_write > HEARTBEAT_S:
            self.write_status(RunStatus.RUNNING)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch}
        keys = EPOCH_KEYS if self.validated else [k for k in EPOCH_KEYS if not k.startswith("val_")]
        for key in keys:
            value = metrics.get(f"{key}_epoch", metrics.get(key))
            if value is not None:
                row[key] = float(value)
        self.validated = False
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        self.rows.append(row)
        write_epoch_table(self.output_dir, self.rows)
        if self.plot:
            plot_progress(self.rows, self.output_dir / PROGRESS_PNG)
        self.write_status(RunStatus.RUNNING)

    def best_so_far(self) -> dict[str, Any]:
        """The epoch row with the highest val_IoU, or an empty dict before the first validation."""
        scored = [r for r in self.rows if isinstance(r.get("val_IoU"), float) and not math.isnan(r["val_IoU"])]
        return max(scored, key=lambda r: r["val_IoU"]) if scored else {}

    def write_status(self, status: str, **extra: Any) -> None:
        best = self.best_so_far()
        progress = {
            "val_IoU": best.get("val_IoU"),
            "val_loss": best.get("val_loss"),
            "best_epoch": best.get("epoch"),
            "epochs_done": self.epochs_done,
            "wall_time_s": self.wall_time_s(),
            **heartbeat(),
        }
        write_metrics(self.output_dir, {**self.record, **progress, "status": status, **extra})
        self.last_write = time.monotonic()


def heartbeat() -> dict[str, Any]:
    """When and by which process the run folder was last written (the report's test for a stale run)."""
    return {
        "heartbeat": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
