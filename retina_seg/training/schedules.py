"""Learning-rate schedules stepped every batch; the module supplies the run's total number of steps."""

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR


def one_cycle(optimizer: torch.optim.Optimizer, total_steps: int, pct_start: float = 0.2) -> LRScheduler:
    """Warm up to the optimizer's configured lr, then anneal (the lr in the optimizer config is the peak)."""
    peak = [group["lr"] for group in optimizer.param_groups]
    return OneCycleLR(optimizer, max_lr=peak, total_steps=max(total_steps, 2), pct_start=pct_start)


def cosine(optimizer: torch.optim.Optimizer, total_steps: int) -> LRScheduler:
    return CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
