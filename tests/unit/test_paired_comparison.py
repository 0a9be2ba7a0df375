"""The paired bootstrap against the best group, on per-image scores constructed here."""

import numpy as np
import pytest

from retina_seg.records.run_folder import TEST_IMAGES_CSV
from retina_seg.reporting.paired import (
    BOOTSTRAP_SEED,
    PairingError,
    compare_with_best,
    paired_difference,
    photograph_means,
)
from retina_seg.reporting.replicates import Group
from retina_seg.reporting.runs import COMPLETED, Objective, Run

IMAGES = [f"{i:02d}_test.png" for i in range(20)]
BASE = np.random.default_rng(0).uniform(0.5, 0.8, len(IMAGES))


def scores(values) -> dict[str, float]:
    return dict(zip(IMAGES, map(float, values)))


def rng() -> np.random.Generator:
    return np.random.default_rng(BOOTSTRAP_SEED)


def test_a_constant_shift_gives_an_interval_that_excludes_zero_and_holds_the_shift():
    mean, low, high = paired_difference(scores(BASE - 0.03), scores(BASE), rng())
    assert mean == pytest.approx(-0.03)
    assert low <= -0.03 + 1e-9 and high >= -0.03 - 1e-9 and high < 0


def test_identical_groups_give_an_interval_that_holds_zero():
    assert paired_difference(scores(BASE), scores(BASE), rng()) == (0.0, 0.0, 0.0)
    # Differences that vary per photograph but average to nothing: no real difference either.
    noise = np.random.default_rng(1).normal(0, 0.02, len(IMAGES))
    mean, low, high = paired_difference(scores(BASE + noise - noise.mean()), scores(BASE), rng())
    assert mean == pytest.approx(0, abs=1e-12) and low < 0 < high


def test_the_same_scores_give_the_same_interval():
    noisy = scores(BASE + np.random.default_rng(2).normal(0, 0.05, len(IMAGES)))
    assert paired_difference(noisy, scores(BASE), rng()) == paired_difference(noisy, scores(BASE), rng())


def test_photographs_are_averaged_over_seeds():
    means = photograph_means([("a", {"x": {"IoU": 0.2}}), ("b", {"x": {"IoU": 0.4}})], "IoU")
    assert means == {"x": pytest.approx(0.3)}


def test_unequal_photograph_sets_are_refused_naming_both_runs():
    one = {image: {"IoU": 0.5, "Dice": 0.6} for image in IMAGES}
    other = {image: {"IoU": 0.5, "Dice": 0.6} for image in IMAGES[:-1] + ["elsewhere.png"]}
    with pytest.raises(PairingError, match="runs 3 \\(/sweep/3\\) and 7 \\(/sweep/7\\) were scored on different"):
        photograph_means([("3 (/sweep/3)", one), ("7 (/sweep/7)", other)], "IoU")


def write_scores(run_dir, values, images=IMAGES):
    run_dir.mkdir(parents=True)
    rows = ["image,protocol,IoU,Dice,clDice"]
    rows += [f"{image},strict,{v},{min(1.0, v + 0.1)},0.5" for image, v in zip(images, values)]
    rows += [f"{image},reference,0.1,0.1,0.1" for image in images]
    (run_dir / TEST_IMAGES_CSV).write_text("\n".join(rows) + "\n")


def group(key, run_dirs, objective) -> Group:
    runs = [Run(str(i), COMPLETED, str(d)) for i, d in enumerate(run_dirs)]
    return Group(key, {}, runs, objective=Objective("val_IoU", "max", objective))


def test_each_group_is_compared_with_the_best_on_strict_iou_and_dice(tmp_path):
    noise = np.random.default_rng(3).normal(0, 0.01, (4, len(IMAGES)))
    for i, shift in enumerate([0, 0, -0.05, -0.05]):
        write_scores(tmp_path / str(i), BASE + shift + noise[i])
    best = group("best", [tmp_path / "0", tmp_path / "1"], 0.7)
    worse = group("worse", [tmp_path / "2", tmp_path / "3"], 0.6)
    differences, problems = compare_with_best([best, worse])
    assert problems == [] and [(d.group, d.best, d.score) for d in differences] == [
        ("worse", "best", "IoU"),
        ("worse", "best", "Dice"),
    ]
    iou = differences[0]
    assert iou.photographs == len(IMAGES) and iou.low < -0.05 < iou.high < 0 and iou.distinguishable


def test_a_group_on_other_photographs_is_a_problem_naming_both_runs(tmp_path):
    write_scores(tmp_path / "a", BASE)
    write_scores(tmp_path / "b", BASE, images=[f"other_{i}.png" for i in range(len(IMAGES))])
    differences, problems = compare_with_best([group("best", [tmp_path / "a"], 0.7), group("g", [tmp_path / "b"], 0.6)])
    assert differences == [] and len(problems) == 1
    assert str(tmp_path / "a") in problems[0] and str(tmp_path / "b") in problems[0]
