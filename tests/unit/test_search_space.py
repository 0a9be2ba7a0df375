"""A search's space in Hydra's grammar as Optuna distributions, a trial's values as overrides again, and the
pruners by name."""

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from retina_seg.config import ConfigError
from retina_seg.sweeps.search_space import every_choice, parameter_overrides, search_space
from retina_seg.tracking.optuna_study import PRUNERS, build_pruner

PRUNER_SETTINGS = {
    "n_startup_trials": 2,
    "n_warmup_steps": 1,
    "min_resource": 1,
    "max_resource": "auto",
    "reduction_factor": 3,
    "lower": 0.1,
    "upper": None,
}


def space_of(**params: str):
    return search_space(params, [])


def test_each_grammar_form_becomes_its_distribution():
    space = space_of(
        **{
            "optimizer.lr": "tag(log, interval(1e-4, 1e-2))",
            "data.batch_size": "range(2, 9, 2)",
            "model.depth": "tag(log, range(2, 6))",
            "loss": "choice(bce_dice, bce_lovasz)",
            "seed": "1,2,3",
        }
    )
    assert space["optimizer.lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert space["data.batch_size"] == IntDistribution(2, 8, step=2)  # range's end is exclusive
    assert space["model.depth"] == IntDistribution(2, 5, log=True)
    assert space["loss"] == CategoricalDistribution(["bce_dice", "bce_lovasz"])
    assert space["seed"] == CategoricalDistribution([1, 2, 3])


def test_a_command_line_sweep_joins_the_space():
    (override,) = OverridesParser.create().parse_overrides(["optimizer.lr=interval(0.1, 0.2)"])
    assert search_space({}, [override]) == {"optimizer.lr": FloatDistribution(0.1, 0.2)}


@pytest.mark.parametrize(
    ("grammar", "named"),
    [
        ("interval(2, 1)", "interval(2.0, 1.0) is empty or reversed"),
        ("range(5, 5)", "is empty or reversed"),
        ("tag(log, interval(0, 1))", "log needs bounds above 0"),
        ("tag(log, choice(1, 2))", "log applies to an interval or an integer range"),
        ("tag(exp, interval(1, 2))", "unknown tag(s) ['exp']"),
    ],
)
def test_a_range_that_cannot_be_searched_is_named(grammar, named):
    with pytest.raises(ConfigError, match="search parameter optimizer.lr") as error:
        space_of(**{"optimizer.lr": grammar})
    assert named in str(error.value)


def test_trial_values_read_back_as_the_same_overrides():
    values = {"optimizer.lr": 0.00123, "loss": "bce_dice", "data.root": "/data/a b", "module.flip_tta": True}
    overrides = parameter_overrides(values)
    parsed = OverridesParser.create().parse_overrides(overrides)
    assert {o.get_key_element(): o.value() for o in parsed} == values


def test_every_choice_and_both_ends_are_composed_before_a_search():
    points = every_choice(space_of(**{"optimizer.lr": "interval(0.1, 0.2)", "loss": "choice(a, b, c)"}))
    assert points == [
        {"optimizer.lr": 0.2, "loss": "a"},
        {"optimizer.lr": 0.1, "loss": "b"},
        {"optimizer.lr": 0.1, "loss": "c"},
    ]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("none", optuna.pruners.NopPruner),
        ("median", optuna.pruners.MedianPruner),
        ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("threshold", optuna.pruners.ThresholdPruner),
    ],
)
def test_each_pruner_is_optunas_own(name, kind):
    assert name in PRUNERS and type(build_pruner(name, PRUNER_SETTINGS)) is kind


def test_an_unknown_pruner_is_named():
    with pytest.raises(ValueError, match="unknown pruner 'asha'"):
        build_pruner("asha", PRUNER_SETTINGS)
