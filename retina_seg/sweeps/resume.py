"""Sweep resumption: re-running a sweep with ``skip_completed=true`` launches only its unfinished runs.

A run counts as done when its folder's metrics.json says ``completed``; such a folder is not touched at
all (Hydra does not even rewrite its ``.hydra/``). Missing, failed, corrupt or still-``running`` runs are
launched again into the same folders, where ``resume=auto`` continues each from its last.ckpt.

The folder of a job is ``hydra.sweep.dir/hydra.sweep.subdir``, computed here exactly as the launcher will,
so the re-run must use the same ``hydra.sweep.dir`` (and the same sweep) as the first run.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from ..config import ConfigError
from ..training.run_folder import METRICS_JSON
from .completed_runs import is_completed

log = logging.getLogger(__name__)


@dataclass
class PendingJob:
    """A job to launch: its number in the sweep, its overrides and the folder name it must get."""

    num: int
    overrides: list[str]
    subdir: str


class SkipCompletedLauncher:
    """Wraps the sweep's launcher and hands it only the jobs whose runs are not completed.

    The basic launcher numbers its jobs by position, and that number is the run's job id, so each
    stretch of consecutive pending jobs is launched with its own first number. Other launchers (submitit)
    get all pending jobs in one call (one SLURM array), each pinned to its folder by a subdir override.
    """

    def __init__(self, launcher: Any, config_loader: Any, master_config: DictConfig):
        self.launcher, self.config_loader, self.master_config = launcher, config_loader, master_config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        pending = [job for job in self._jobs(job_overrides, initial_job_idx) if job is not None]
        if not pending:
            return []
        if isinstance(self.launcher, BasicLauncher):
            return [ret for start, chunk in consecutive_chunks(pending)
                    for ret in self.launcher.launch(chunk, initial_job_idx=start)]
        pinned = [[*job.overrides, f"hydra.sweep.subdir={quote_override(job.subdir)}"] for job in pending]
        return list(self.launcher.launch(pinned, initial_job_idx=pending[0].num))

    def _jobs(self, job_overrides: Sequence[Sequence[str]], first: int) -> list[PendingJob | None]:
        """One PendingJob per job still to run, None for a completed one (logged as skipped)."""
        jobs: list[PendingJob | None] = []
        seen_metrics = False
        for num, overrides in enumerate(job_overrides, start=first):
            sweep_dir, subdir = self.run_folder(list(overrides), num)
            seen_metrics |= (sweep_dir / subdir / METRICS_JSON).exists()
            if is_completed(sweep_dir / subdir):
                log.info("skip_completed: job #%d already completed in %s", num, sweep_dir / subdir)
                jobs.append(None)
            else:
                jobs.append(PendingJob(num, list(overrides), subdir))
        log.info("skip_completed: %d of %d run(s) to launch", sum(j is not None for j in jobs), len(jobs))
        if not seen_metrics:
            log.warning("skip_completed: no run of this sweep has a metrics.json yet; to resume an earlier "
                        "sweep, pass its hydra.sweep.dir")
        return jobs

    def run_folder(self, overrides: list[str], num: int) -> tuple[Path, str]:
        """(hydra.sweep.dir, hydra.sweep.subdir) of job number ``num``, resolved as the launcher will."""
        cfg = self.config_loader.load_sweep_config(self.master_config, overrides)
        with open_dict(cfg.hydra.job):
            cfg.hydra.job.num = num
        try:
            return Path(str(cfg.hydra.sweep.dir)), str(cfg.hydra.sweep.subdir)
        except OmegaConfBaseException as error:
            raise ConfigError(
                "skip_completed: hydra.sweep.subdir must name a run by what is known before launch "
                f"(e.g. ${{hydra.job.num}} or ${{hydra.job.override_dirname}}), not the launcher's job id: "
                f"{error}") from error


def consecutive_chunks(jobs: list[PendingJob]) -> list[tuple[int, list[list[str]]]]:
    """[(first job number, [overrides, ...]), ...] for each stretch of consecutive job numbers."""
    chunks: list[tuple[int, list[list[str]]]] = []
    for job in jobs:
        if chunks and chunks[-1][0] + len(chunks[-1][1]) == job.num:
            chunks[-1][1].append(job.overrides)
        else:
            chunks.append((job.num, [job.overrides]))
    return chunks


def quote_override(value: str) -> str:
    """A value as a quoted string in Hydra's override grammar (subdirs may hold '=' and ',')."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
