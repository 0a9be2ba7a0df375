"""The real Kaggle, DRIVE and STARE copies in ../shared/data: counts, sizes, mask statistics and splits, and the
second observers scored against the first (the human baseline)."""

import json
from collections import Counter

import numpy as np
import pytest

from retina_seg.data.io import read_mask
from retina_seg.data.layouts import drive_samples, kaggle_samples, stare_samples
from retina_seg.data.loading import load_samples
from retina_seg.data.splits import split_train_val
from tests.helpers.dataset_trees import hrf_tree
from tests.helpers.environment import REPO_ROOT
from tests.helpers.runs import run_main

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def kaggle_train(kaggle_root):
    return load_samples(kaggle_samples(kaggle_root, "train"))


@pytest.fixture(scope="module")
def kaggle_test(kaggle_root):
    return load_samples(kaggle_samples(kaggle_root, "test"))


def test_kaggle_counts_and_sizes(kaggle_train, kaggle_test):
    assert len(kaggle_train) == 80 and len(kaggle_test) == 20
    for sample in kaggle_train + kaggle_test:
        assert sample.image.shape == (512, 512, 3) and sample.image.dtype == np.uint8
        assert sample.mask.shape == (512, 512) and sample.mask.dtype == bool and sample.fov.all()


def test_kaggle_vessel_fraction(kaggle_train, kaggle_test):
    fractions = [sample.mask.mean() for sample in kaggle_train + kaggle_test]
    assert 0.06 <= min(fractions) and max(fractions) <= 0.12


def test_kaggle_train_groups_are_four_copies_of_one_photograph(kaggle_train):
    assert set(Counter(sample.group for sample in kaggle_train).values()) == {4}
    original, h_flip, v_flip = kaggle_train[8:11]
    assert original.group == h_flip.group == v_flip.group == "2"
    np.testing.assert_array_equal(h_flip.image, original.image[:, ::-1])
    np.testing.assert_array_equal(v_flip.mask, original.mask[::-1])


def test_kaggle_grouped_split(kaggle_train):
    train, val = split_train_val(kaggle_train, 20, "grouped", seed=0)
    assert len(train) == 60 and len(val) == 20
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert set(Counter(s.group for s in val).values()) == {4}
    assert set(Counter(s.group for s in train).values()) == {4}
    again = split_train_val(kaggle_train, 20, "grouped", seed=0)[1]
    assert [s.name for s in again] == [s.name for s in val]
    assert [s.name for s in split_train_val(kaggle_train, 20, "grouped", seed=1)[1]] != [s.name for s in val]


def test_kaggle_random_split(kaggle_train):
    train, val = split_train_val(kaggle_train, 20, "random", seed=0)
    assert len(train) == 60 and len(val) == 20
    assert {s.name for s in train}.isdisjoint({s.name for s in val})


@pytest.mark.parametrize("split", ["train", "test"])
def test_drive(drive_root, split):
    samples = load_samples(drive_samples(drive_root, split))
    assert len(samples) == 20
    for sample in samples:
        assert sample.image.shape == (584, 565, 3)
        assert sample.mask.shape == sample.fov.shape == (584, 565)
        assert 0.6 <= sample.fov.mean() <= 0.8
        assert 0.05 <= sample.mask[sample.fov].mean() <= 0.2
        assert sample.mask[~sample.fov].mean() < 0.01


def test_drive_second_observer_zero_one_palette_gif(drive_root):
    """Stored as palette indices 0/1; read by value it agrees closely with the first observer."""
    first = read_mask(drive_root / "test" / "1st_manual" / "01_manual1.gif")
    second = read_mask(drive_root / "test" / "2nd_manual" / "01_manual2.gif")
    assert 0.05 <= second.mean() <= 0.15
    assert (first == second).mean() > 0.9


def test_stare(stare_root):
    train, test = (
        load_samples(stare_samples(stare_root, split), detect_missing_fov=True) for split in ("train", "test")
    )
    assert [s.name for s in train][:2] == ["im0001", "im0002"] and [s.name for s in test][-1] == "im0324"
    assert len(train) == len(test) == 10
    for sample in train + test:
        assert sample.image.shape == (605, 700, 3)
        assert sample.mask.shape == sample.second_mask.shape == sample.fov.shape == (605, 700)
        assert 0.05 <= sample.mask[sample.fov].mean() <= 0.2
    # Over the set, the second observer marked more vessel pixels (many more thin vessels: see PROVENANCE.md).
    assert sum(s.second_mask.sum() for s in train + test) > 1.2 * sum(s.mask.sum() for s in train + test)


# Published F1 (= Dice) of the second observer against the first inside the FOV (Idiap bob.ip.binseg tables).
PUBLISHED_SECOND_OBSERVER_F1 = {"drive": 0.788, "stare": 0.759}


@pytest.mark.slow
@pytest.mark.parametrize("data, split", [("drive", []), ("stare", ["data.source.split=all"])])
def test_second_observer_scores_near_the_published_human_baseline(data, split, request, tmp_path):
    root = request.getfixturevalue(f"{data}_root")
    result = run_main(
        "retina_seg.eval",
        "second_observer=true",
        f"data={data}",
        f"data.root={root}",
        *split,
        f"hydra.run.dir={tmp_path}",
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["images"] == 20 and record["observer"] == "second against first"
    assert abs(record["test_Dice"] - PUBLISHED_SECOND_OBSERVER_F1[data]) < 0.02, record["test_Dice"]
    assert 0 < record["test_IoU"] < record["test_Dice"] and 0 < record["test_clDice"] < 1
    assert "test_AUC" not in record  # a binary mask ranks no pixels


def test_a_set_without_a_second_observer_is_named(tmp_path):
    hrf_tree(tmp_path / "hrf", [1])
    result = run_main(
        "retina_seg.eval",
        "second_observer=true",
        "data=hrf",
        f"data.root={tmp_path / 'hrf'}",
        "data.source.split=all",
        f"hydra.run.dir={tmp_path / 'eval'}",
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 2 and "no second-observer masks for ['01_dr', '01_g', '01_h']" in result.stderr
    assert not (tmp_path / "eval" / "metrics.json").exists()
