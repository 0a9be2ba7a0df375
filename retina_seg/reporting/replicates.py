"""Runs gathered into groups of replicates (records/groups.py says which runs those are) and summarised.

A group's numbers come from its completed runs only: mean, sample standard deviation (none for a single run:
one value has no spread to show), min and max of each score. Failed, running, stale runs are counted by status
beside them, never averaged in. Runs without a readable config (pending, corrupt) belong to no group; the
job-id table and its problems list them. Groups are ranked by the mean of their runs' objective (best first,
following its mode); groups without a completed run come last.
"""

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..records.groups import DEFAULT_REPLICATE_KEYS, group_key, settings
from .comet_archives import HYPERPARAMETERS
from .runs import COMPLETED, SCORE_KEYS, Objective, Run

# Config keys the job-id table already shows under its own column names.
COLUMN_OF_KEY = {key: column for column, key in HYPERPARAMETERS.items()}
SUMMARY_KEYS = (*SCORE_KEYS, "epochs")


@dataclass(frozen=True)
class Summary:
    """One score over a group's completed runs that have it; ``std`` is None for a single value."""

    n: int
    mean: float
    std: float | None
    min: float
    max: float


@dataclass
class Group:
    """Replicates of one setting: its key, the settings that tell it from the other groups, its runs, the
    summaries of its completed runs, and its objective (the mean of theirs; None without a completed run)."""

    key: str
    settings: dict[str, Any]
    runs: list[Run]
    summaries: dict[str, Summary] = field(default_factory=dict)
    objective: Objective | None = None

    @property
    def n(self) -> int:
        return sum(run.status == COMPLETED for run in self.runs)

    @property
    def not_completed(self) -> dict[str, int]:
        """How many of its runs are in each other status (failed, running, stale), none averaged in."""
        return dict(Counter(run.status for run in self.runs if run.status != COMPLETED))


def summarise(values: Iterable[float | int | None]) -> Summary | None:
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    spread = statistics.stdev(present) if len(present) > 1 else None
    return Summary(len(present), statistics.fmean(present), spread, min(present), max(present))


def group_runs(runs: list[Run], replicate_keys: Iterable[str] = DEFAULT_REPLICATE_KEYS) -> list[Group]:
    """The groups of ``runs`` (those with a config), ranked by their objective (see the module docstring)."""
    replicate_keys = tuple(replicate_keys)
    members: dict[str, list[Run]] = {}
    for run in runs:
        if run.config:
            members.setdefault(group_key(run.config, replicate_keys), []).append(run)
    varying = varying_keys([settings(runs[0].config, replicate_keys) for runs in members.values()])
    groups = []
    for key, grouped in members.items():
        shown = settings(grouped[0].config, replicate_keys)
        group = Group(key, {name: shown.get(name) for name in varying}, grouped)
        completed = [run for run in grouped if run.status == COMPLETED]
        for name in SUMMARY_KEYS:
            summary = summarise(_value(run, name) for run in completed)
            if summary is not None:
                group.summaries[name] = summary
        group.objective = _mean_objective([run.objective for run in completed if run.objective is not None])
        groups.append(group)
    return rank_groups(groups)


def _value(run: Run, name: str) -> float | int | None:
    return run.values.get(name) if name == "epochs" else run.scores.get(name)


def _mean_objective(objectives: list[Objective]) -> Objective | None:
    values = [o.value for o in objectives if o.value is not None]
    if not values:
        return None
    return Objective(objectives[0].metric, objectives[0].mode, statistics.fmean(values))


def best_run(group: Group) -> Run | None:
    """The group's completed run with the best objective (following its mode), or None without one."""
    scored = [
        run
        for run in group.runs
        if run.status == COMPLETED and run.objective is not None and run.objective.value is not None
    ]
    if not scored:
        return None
    sign = -1 if scored[0].objective.mode == "max" else 1
    return min(scored, key=lambda run: sign * run.objective.value)


def rank_groups(groups: list[Group]) -> list[Group]:
    """Best objective first, following its mode; groups without one after them, by key."""
    ranked = sorted(
        (g for g in groups if g.objective is not None),
        key=lambda g: -g.objective.value if g.objective.mode == "max" else g.objective.value,
    )
    return ranked + sorted((g for g in groups if g.objective is None), key=lambda g: g.key)


def varying_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The keys whose value (compared as text) is not the same in every config, or missing from some."""
    keys = sorted({key for config in configs for key in config})
    return [key for key in keys if len({str(config.get(key, "<missing>")) for config in configs}) > 1]


def column_name(key: str) -> str:
    """A config key under the name the job-id table gives it (``optimizer.lr`` -> ``learning_rate``)."""
    return COLUMN_OF_KEY.get(key, key)


def sweep_keys(runs: list[Run]) -> list[str]:
    """The config keys that vary across the runs, replicate keys included, bookkeeping left out: what tells
    one curve from another."""
    return varying_keys([settings(run.config, ()) for run in runs if run.config])


def job_table_keys(runs: list[Run]) -> list[str]:
    """The config keys the job-id table adds after its own columns: the sweep keys its own columns do not show."""
    return [key for key in sweep_keys(runs) if key not in COLUMN_OF_KEY]
