"""What the pipeline tells experiment trackers: who the run is at the start, its final record at the end.

Loggers that want this (CometRunLogger) implement ``start_run(trainer, record)`` and
``finish_run(trainer, record)``; other loggers (CSV) are left alone.
"""

from typing import Any


def start_tracking(trainer, record: dict[str, Any]) -> None:
    """``record`` is the run's identity: job_id, git_commit, the resolved config, ..."""
    for logger in trainer.loggers:
        if hasattr(logger, "start_run"):
            logger.start_run(trainer, record)


def finish_tracking(trainer, record: dict[str, Any]) -> None:
    """``record`` is what metrics.json says at the end: final val (chosen threshold) and test scores."""
    for logger in trainer.loggers:
        if hasattr(logger, "finish_run"):
            logger.finish_run(trainer, record)
