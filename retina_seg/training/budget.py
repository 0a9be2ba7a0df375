"""Training for a wall-clock budget instead of an epoch count (budgeted training).

A fixed number of epochs tuned on one CPU runs out of time on a slower one, where `trainer.max_time` then
cuts the schedule off at a high learning rate. Here the schedule's progress is the training time spent
divided by the budget, so every machine runs the whole one-cycle schedule (warm-up, peak, annealing to
the final rate) in the same time and simply takes fewer steps where steps are slower. Validation during
training runs on the same clock, which starts when the trainer is built. What follows training's last step is
reserved from the budget so that the run as a whole keeps to it: the end of the last epoch (its validation, its
checkpoint and run-folder writes: the longest epoch end seen) and the final validation and test (twice the
longest validation seen).
"""

import math
import time
from typing import Any

import lightning.pytorch as pl

# Validations after training's last epoch: the final one and the test.
FINAL_VALIDATIONS = 2


def one_cycle_factor(progress: float, pct_start: float, div_factor: float, final_div_factor: float) -> float:
    """The one-cycle learning rate as a fraction of the peak at ``progress`` in [0, 1]: cosine warm-up from
    peak / div_factor to the peak over ``pct_start``, then cosine annealing to peak / (div_factor *
    final_div_factor) (the shape of torch's OneCycleLR, over time instead of steps)."""
    start, end = 1.0 / div_factor, 1.0 / (div_factor * final_div_factor)
    progress = min(max(progress, 0.0), 1.0)
    if progress < pct_start:
        return _cosine(start, 1.0, progress / pct_start)
    return _cosine(1.0, end, (progress - pct_start) / (1.0 - pct_start))


def _cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2


class TimeBudget(pl.Callback):
    """Sets every optimizer group's learning rate from the time spent before each training step and stops
    training when the budget (less the reserve for the final evaluation) is spent. The peak rate is the
    optimizer's configured lr. The time spent is saved in checkpoints, so a resumed run continues the
    schedule where it stopped. Use with ``scheduler=none`` and a ``trainer.max_epochs`` that is not reached.
    """

    def __init__(
        self, budget_s: float, pct_start: float = 0.2, div_factor: float = 25.0, final_div_factor: float = 1e4
    ):
        if not budget_s > 0:
            raise ValueError(f"callbacks.time_budget.budget_s must be > 0, got {budget_s!r}")
        if not 0 < pct_start < 1:
            raise ValueError(f"callbacks.time_budget.pct_start must be in (0, 1), got {pct_start!r}")
        self.budget_s, self.pct_start = float(budget_s), pct_start
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        self.spent_s = 0.0  # before the current process's start (a resumed run)
        self.longest_validation_s = 0.0
        self.longest_epoch_end_s = 0.0  # from an epoch's last step to the next epoch's start
        self._started, self._validation_started, self._last_step_ended = time.monotonic(), None, None
        self._peaks: list[float] = []

    def elapsed_s(self) -> float:
        return self.spent_s + (time.monotonic() - self._started if self._started is not None else 0.0)

    def progress(self) -> float:
        """Training time spent / training time available (the budget less the reserve for what follows the
        last step)."""
        last_epoch_end = max(self.longest_epoch_end_s, self.longest_validation_s)
        available = max(self.budget_s - last_epoch_end - FINAL_VALIDATIONS * self.longest_validation_s, 1e-9)
        return self.elapsed_s() / available

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.lr_scheduler_configs:
            raise ValueError("callbacks.time_budget sets the learning rate itself: use scheduler=none")
        self._peaks = [group.get("initial_lr", group["lr"]) for opt in trainer.optimizers for group in opt.param_groups]

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        factor = one_cycle_factor(self.progress(), self.pct_start, self.div_factor, self.final_div_factor)
        groups = [group for opt in trainer.optimizers for group in opt.param_groups]
        for group, peak in zip(groups, self._peaks):
            group["initial_lr"] = peak
            group["lr"] = peak * factor

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._last_step_ended = time.monotonic()
        if self.progress() >= 1.0:
            trainer.should_stop = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._last_step_ended is not None:
            self.longest_epoch_end_s = max(self.longest_epoch_end_s, time.monotonic() - self._last_step_ended)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation_started = time.monotonic()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._validation_started is not None and not trainer.sanity_checking:
            spent = time.monotonic() - self._validation_started
            self.longest_validation_s = max(self.longest_validation_s, spent)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.spent_s, self._started = self.elapsed_s(), None

    def state_dict(self) -> dict[str, float]:
        return {
            "spent_s": self.elapsed_s(),
            "longest_validation_s": self.longest_validation_s,
            "longest_epoch_end_s": self.longest_epoch_end_s,
        }

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.spent_s = float(state_dict["spent_s"])
        self.longest_validation_s = float(state_dict["longest_validation_s"])
        self.longest_epoch_end_s = float(state_dict.get("longest_epoch_end_s", 0.0))  # older checkpoints lack it
