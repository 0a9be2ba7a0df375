"""Train/validation splits: whole photographs in grouped mode, the seeded reference in random mode."""

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from retina_seg.data.errors import DataError
from retina_seg.data.loading import LoadedSample
from retina_seg.data.splits import split_train_val


def kaggle_like(n: int = 80) -> list[SimpleNamespace]:
    return [SimpleNamespace(index=i, group=str(i // 4)) for i in range(n)]


def indices(items) -> list[int]:
    return [item.index for item in items]


def test_grouped_takes_whole_photographs():
    samples = kaggle_like()
    train, val = split_train_val(samples, 20, "grouped", seed=0)
    assert len(train) == 60 and len(val) == 20
    assert sorted(indices(train) + indices(val)) == list(range(80))
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert set(Counter(s.group for s in val).values()) == {4}
    assert len({s.group for s in val}) == 5


def test_grouped_keeps_input_order():
    train, val = split_train_val(kaggle_like(), 20, "grouped", seed=3)
    assert indices(train) == sorted(indices(train)) and indices(val) == sorted(indices(val))


@pytest.mark.parametrize("mode", ["grouped", "random"])
def test_deterministic_per_seed_and_different_across_seeds(mode):
    samples = kaggle_like()
    first = indices(split_train_val(samples, 20, mode, seed=7)[1])
    assert first == indices(split_train_val(samples, 20, mode, seed=7)[1])
    others = {tuple(indices(split_train_val(samples, 20, mode, seed=s)[1])) for s in range(5)}
    assert len(others) > 1


def test_grouped_needs_whole_groups():
    with pytest.raises(DataError, match="whole photograph groups"):
        split_train_val(kaggle_like(), 18, "grouped", seed=0)


def test_grouped_with_mixed_group_sizes_finds_an_exact_choice():
    groups = ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["d"] * 2
    samples = [SimpleNamespace(index=i, group=group) for i, group in enumerate(groups)]
    for seed in range(10):
        train, val = split_train_val(samples, 5, "grouped", seed=seed)
        assert len(val) == 5 and "d" in {s.group for s in val}
        assert {s.group for s in train}.isdisjoint({s.group for s in val})


def test_empty_group_means_one_photograph_per_sample():
    samples = [SimpleNamespace(index=i, group="") for i in range(10)]
    train, val = split_train_val(samples, 3, "grouped", seed=1)
    assert len(train) == 7 and len(val) == 3


def test_random_mode_is_a_seeded_permutation_of_images():
    samples = kaggle_like()
    train, val = split_train_val(samples, 20, "random", seed=0)
    assert len(train) == 60 and len(val) == 20
    assert indices(val) == sorted(np.random.default_rng(0).permutation(80)[:20].tolist())
    assert indices(train) == sorted(indices(train))


def test_random_mode_can_split_a_photograph():
    """The reference recipe leaks copies of training photographs into validation; grouped mode prevents that."""
    splits = [split_train_val(kaggle_like(), 20, "random", seed=seed) for seed in range(5)]
    assert any({s.group for s in train} & {s.group for s in val} for train, val in splits)


def test_works_on_loaded_samples():
    blank = np.zeros((2, 2), dtype=bool)
    image = np.zeros((2, 2, 3), np.uint8)
    samples = [LoadedSample(f"s{i}", image, blank, blank, str(i // 2)) for i in range(6)]
    train, val = split_train_val(samples, 2, "grouped", seed=0)
    assert len(val) == 2 and val[0].group == val[1].group


def test_zero_validation():
    train, val = split_train_val(kaggle_like(8), 0, "grouped", seed=0)
    assert len(train) == 8 and val == []


@pytest.mark.parametrize("n_val", [-1, 80, 100])
def test_n_val_out_of_range(n_val):
    with pytest.raises(DataError, match=f"n_val={n_val}"):
        split_train_val(kaggle_like(), n_val, "random", seed=0)


def test_unknown_mode_names_the_allowed_ones():
    with pytest.raises(ValueError, match="grouped, random"):
        split_train_val(kaggle_like(), 20, "stratified", seed=0)
