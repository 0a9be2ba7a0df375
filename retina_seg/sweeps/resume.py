"""Sweep resumption: re-running a sweep with ``skip_completed=true`` launches only its unfinished runs.

A run counts as done when its folder's metrics.json says ``completed``; such a folder is not touched at
all (Hydra does not even rewrite its ``.hydra/``). Missing, failed, corrupt or still-``running`` runs are
launched again into the same folders, where ``resume=auto`` continues each from its last.ckpt.

A folder belongs to a job only when it ran the same overrides (its ``.hydra/overrides.yaml``). When they
differ (new values in the same ``hydra.sweep.dir``), the sweep is refused before anything is launched,
naming each folder and the keys that differ: skipping would show old results as answers to the new
command, and resuming would continue a checkpoint trained with other values. Refusing (rather than moving
the job to a new folder) keeps one folder per job number and leaves the choice of a new
``hydra.sweep.dir`` to the user.

The folder of a job is ``hydra.sweep.dir/hydra.sweep.subdir``, computed here exactly as the launcher will,
so the re-run must use the same ``hydra.sweep.dir`` (and the same sweep) as the first run.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from ..config import ConfigError
from ..records.run_folder import METRICS_JSON, completed_metrics
from ..records.run_overrides import RECORDED_OVERRIDES, UNREADABLE, override_changes, read_overrides

log = logging.getLogger(__name__)

# Overrides that say how a sweep is launched or resumed, not what a run is. Not CHANGEABLE_ON_RESUME: a sweep
# skips a completed run, so one with a smaller max_epochs would stand as the answer to a larger one.
IGNORED_KEYS = ("skip_completed",)


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
            return [
                ret
                for start, chunk in consecutive_chunks(pending)
                for ret in self.launcher.launch(chunk, initial_job_idx=start)
            ]
        pinned = [[*job.overrides, f"hydra.sweep.subdir={quote_override(job.subdir)}"] for job in pending]
        return list(self.launcher.launch(pinned, initial_job_idx=pending[0].num))

    def refuse_other_runs(self, job_overrides: Sequence[Sequence[str]], first: int = 0) -> None:
        """ConfigError when a job's folder holds a run of other overrides; the sweeper asks before it writes."""
        refuse_other_runs(self._folders(job_overrides, first))

    def _folders(self, job_overrides: Sequence[Sequence[str]], first: int) -> list[tuple[int, list[str], Path, str]]:
        return [
            (num, list(overrides), *self.run_folder(list(overrides), num))
            for num, overrides in enumerate(job_overrides, start=first)
        ]

    def _jobs(self, job_overrides: Sequence[Sequence[str]], first: int) -> list[PendingJob | None]:
        """One PendingJob per job still to run, None for a completed one (logged as skipped)."""
        folders = self._folders(job_overrides, first)
        refuse_other_runs(folders)
        jobs: list[PendingJob | None] = []
        for num, overrides, sweep_dir, subdir in folders:
            if completed_metrics(sweep_dir / subdir) is not None:
                log.info("skip_completed: job #%d already completed in %s", num, sweep_dir / subdir)
                jobs.append(None)
            else:
                jobs.append(PendingJob(num, overrides, subdir))
        log.info("skip_completed: %d of %d run(s) to launch", sum(j is not None for j in jobs), len(jobs))
        if not any((sweep_dir / subdir / METRICS_JSON).exists() for _, _, sweep_dir, subdir in folders):
            log.warning(
                "skip_completed: no run of this sweep has a metrics.json yet; to resume an earlier "
                "sweep, pass its hydra.sweep.dir"
            )
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
                f"{error}"
            ) from error


def refuse_other_runs(folders: list[tuple[int, list[str], Path, str]]) -> None:
    """ConfigError naming every job folder that holds a run of other overrides than its job's."""
    mismatches = []
    for num, overrides, sweep_dir, subdir in folders:
        differing = differing_keys(sweep_dir / subdir, overrides)
        if differing:
            mismatches.append(f"{sweep_dir / subdir} (job #{num}): {', '.join(differing)}")
    if mismatches:
        raise ConfigError(
            "skip_completed: these run folders hold runs of other overrides than this sweep's jobs, "
            "so they are neither skipped nor resumed; use a new hydra.sweep.dir for new values:\n"
            + "\n".join(f"  - {line}" for line in mismatches)
        )


def differing_keys(run_dir: Path, overrides: Sequence[str]) -> list[str]:
    """The override keys (``key: old -> new``) in which the run recorded in ``run_dir`` differs from a job;
    nothing when the folder holds no run yet. A run whose overrides cannot be read differs in all of them."""
    recorded_file = run_dir / RECORDED_OVERRIDES
    if not recorded_file.exists():
        return [] if not (run_dir / METRICS_JSON).exists() else [f"{recorded_file} missing"]
    try:
        changes = override_changes(read_overrides(run_dir), overrides, IGNORED_KEYS)
    except UNREADABLE as error:
        return [f"{recorded_file} unreadable ({error})"]
    return [f"{key}: {old} -> {new}" for key, (old, new) in changes.items()]


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
