"""Each group against the best group on the same test photographs: a paired bootstrap confidence interval.

The per-image scores come from each run folder's ``test_images.csv`` (protocol ``strict``). Seeds: each
photograph's score in a group is the mean over the group's completed runs (its seeds), and the bootstrap then
resamples photographs, pairing the two groups' means photograph by photograph. Resampling the seeds as well was
not chosen: scipy's bootstrap resamples one axis, and with the usual 2-3 seeds a resample of seeds has a
handful of distinct outcomes, so it would add noise to the interval rather than information. The interval is
therefore about these seeds' average on these photographs; the spread between seeds is the group table's std.
The resampling is scipy.stats.bootstrap (paired, percentile interval, which stays defined when every photograph
shows the same difference), seeded with a fixed generator so the same runs always give the same report.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from ..records.run_folder import read_test_images
from .replicates import Group
from .runs import COMPLETED, Run

PAIRED_PROTOCOL, PAIRED_SCORES = "strict", ("IoU", "Dice")
CONFIDENCE, RESAMPLES, BOOTSTRAP_SEED = 0.95, 9999, 20260101


class PairingError(ValueError):
    """Two runs scored on different photographs cannot be paired; the message names both."""


@dataclass(frozen=True)
class PairedDifference:
    """``group`` minus ``best`` in the mean per-image ``score`` over ``photographs`` paired photographs."""

    group: str
    best: str
    score: str
    photographs: int
    mean: float
    low: float
    high: float

    @property
    def distinguishable(self) -> bool:
        return not self.low <= 0 <= self.high

    def verdict(self) -> str:
        return "distinguishable" if self.distinguishable else "not distinguishable"


def read_image_scores(run_dir: Path | str, protocol: str = PAIRED_PROTOCOL) -> dict[str, dict[str, float]] | None:
    """``{image: {score: value}}`` of one protocol from the run folder's test_images.csv, or None when it has none."""
    rows = [row for row in read_test_images(run_dir) if row["protocol"] == protocol]
    return {row["image"]: {score: row[score] for score in PAIRED_SCORES} for row in rows} or None


def photograph_means(scored: list[tuple[str, dict[str, dict[str, float]]]], score: str) -> dict[str, float]:
    """Each photograph's ``score`` averaged over the runs ``[(run name, {image: scores})]``; PairingError when
    a run was scored on other photographs than the first."""
    first_name, first = scored[0]
    for name, images in scored[1:]:
        if set(images) != set(first):
            raise PairingError(
                f"runs {first_name} and {name} were scored on different test photographs "
                f"({len(first)} and {len(images)} images, {len(set(images) ^ set(first))} not in both): "
                "they cannot be compared photograph by photograph"
            )
    return {image: float(np.mean([images[image][score] for _, images in scored])) for image in first}


def paired_difference(group: dict[str, float], best: dict[str, float], rng: np.random.Generator) -> tuple:
    """(mean difference group - best, CI low, CI high) over the photographs both hold (the same set)."""
    images = sorted(best)
    a = np.array([group[image] for image in images])
    b = np.array([best[image] for image in images])
    result = stats.bootstrap(
        (a, b),
        _mean_difference,
        paired=True,
        vectorized=True,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        rng=rng,
    )
    interval = result.confidence_interval
    return float(np.mean(a - b)), float(interval.low), float(interval.high)


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a - b, axis=axis)


def scored_runs(group: Group) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """(run name, per-image scores) of the group's completed runs that wrote them."""
    found = []
    for run in group.runs:
        if run.status == COMPLETED and (images := read_image_scores(run.source)) is not None:
            found.append((run_name(run), images))
    return found


def run_name(run: Run) -> str:
    return f"{run.job_id} ({run.source})"


def compare_with_best(groups: list[Group]) -> tuple[list[PairedDifference], list[str]]:
    """Every other group against the first (the best) on IoU and Dice; groups whose runs have no per-image
    scores are left out, and a pair of runs on different photographs is a problem naming both, not a number."""
    scored = [(group, runs) for group in groups if (runs := scored_runs(group))]
    if len(scored) < 2 or scored[0][0] is not groups[0]:
        return [], []
    (best, best_runs), differences, problems = scored[0], [], []
    for group, runs in scored[1:]:
        rng = np.random.default_rng(BOOTSTRAP_SEED)  # each interval depends on its two groups only
        try:
            photograph_means([*best_runs, *runs], PAIRED_SCORES[0])
            for score in PAIRED_SCORES:
                mean, low, high = paired_difference(
                    photograph_means(runs, score), photograph_means(best_runs, score), rng
                )
                differences.append(PairedDifference(group.key, best.key, score, len(best_runs[0][1]), mean, low, high))
        except ValueError as error:  # PairingError, or too few photographs to resample
            problems.append(f"paired comparison of group {group.key} with {best.key}: {error}")
    return differences, problems
