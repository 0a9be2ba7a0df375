"""Lightning's step-level CSV log, one file per process of a run: a resumed run keeps the log of every
process that led to it, where Lightning's own CSV logger would delete the earlier one."""

from pathlib import Path

from lightning.pytorch.loggers import CSVLogger

from ..records.run_folder import STEP_LOGS, step_log_folder


class StepLogger(CSVLogger):
    """``<run>/logs/metrics.csv`` for a run's first process, ``<run>/logs/attempt-<n>/metrics.csv`` for each
    process that resumes it (records/run_folder.py)."""

    def __init__(self, save_dir: str | Path, **kwargs):
        super().__init__(save_dir, name=STEP_LOGS, version=step_log_folder(Path(save_dir)), **kwargs)
