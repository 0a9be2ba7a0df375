"""A search's space, written in Hydra's override grammar (``hydra.sweeper.params`` and sweep overrides on the
command line), as Optuna distributions; and a trial's values as overrides again.

``interval(a, b)``: a float in [a, b] (``tag(log, interval(a, b))``: sampled on a log scale); ``range(a, b[, s])``:
an integer from a to b exclusive in steps of s (a float range: one of its values); ``choice(x, y)`` or ``x,y``:
one of the values, which may be a config group's options (``loss=choice(bce_dice, bce_lovasz)``).
"""

import json
import math
import re
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from ..config import ConfigError

SearchSpace = dict[str, BaseDistribution]
# A string Hydra's grammar reads as itself without quotes (a group option, a plain word or path).
_PLAIN_STRING = re.compile(r"[A-Za-z_][\w./-]*")


def search_space(params: dict[str, str], sweep_overrides: list[Override]) -> SearchSpace:
    """The distributions of ``hydra.sweeper.params`` (key -> grammar string) and of the command line's sweep
    overrides; ConfigError naming the parameter whose range is empty, reversed or not loggable."""
    parser = OverridesParser.create()
    parsed = [parser.parse_override(f"{key}={value}") for key, value in params.items()]
    return {override.get_key_element(): distribution(override) for override in [*parsed, *sweep_overrides]}


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override (or a one-value choice for a plain value)."""
    sweep, name = override.value(), override.input_line or override.get_key_element()
    tags = set(getattr(sweep, "tags", ()) or ())
    if tags - {"log"}:
        raise ConfigError(f"search parameter {name}: unknown tag(s) {sorted(tags - {'log'})}; only log is known")
    log = "log" in tags
    if isinstance(sweep, IntervalSweep):
        if not sweep.start < sweep.end:
            raise ConfigError(f"search parameter {name}: interval({sweep.start}, {sweep.end}) is empty or reversed")
        _refuse_log_at_or_below_zero(name, log, sweep.start)
        return FloatDistribution(sweep.start, sweep.end, log=log)
    if isinstance(sweep, RangeSweep):
        return _range_distribution(name, sweep, log)
    if log:
        raise ConfigError(f"search parameter {name}: log applies to an interval or an integer range")
    choices = sweep.list if isinstance(sweep, ChoiceSweep) else [sweep]
    if not choices:
        raise ConfigError(f"search parameter {name}: no value to choose from")
    return CategoricalDistribution(choices)


def _range_distribution(name: str, sweep: RangeSweep, log: bool) -> BaseDistribution:
    start, stop, step = sweep.start, sweep.stop, sweep.step
    count = math.ceil((stop - start) / step) if step else 0
    if count <= 0:
        raise ConfigError(f"search parameter {name}: range({start}, {stop}, {step}) is empty or reversed")
    values = [start + i * step for i in range(count)]
    if not all(isinstance(v, int) for v in (start, stop, step)):
        if log:
            raise ConfigError(f"search parameter {name}: log applies to an interval or an integer range")
        return CategoricalDistribution(values)
    if log:
        _refuse_log_at_or_below_zero(name, log, start)
        if step != 1:
            raise ConfigError(f"search parameter {name}: a log-scaled range needs step 1, not {step}")
    return IntDistribution(start, values[-1], log=log, step=step)


def _refuse_log_at_or_below_zero(name: str, log: bool, low: float) -> None:
    if log and low <= 0:
        raise ConfigError(f"search parameter {name}: log needs bounds above 0, not {low}")


def as_json(space: SearchSpace) -> str:
    """The space as one JSON string (Optuna's own encoding of each distribution): stored with the study, so
    that a study is never continued with another space."""
    return json.dumps({name: json.loads(distribution_to_json(d)) for name, d in sorted(space.items())}, sort_keys=True)


def parameter_overrides(params: dict[str, Any]) -> list[str]:
    """A trial's values as overrides in Hydra's grammar."""
    return [f"{name}={override_value(value)}" for name, value in params.items()]


def override_value(value: Any) -> str:
    """A value as Hydra's grammar reads it back: null, true/false, a number, a word, or a quoted string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{override_value(item)}" for key, item in value.items()) + "}"
    text = str(value)
    if _PLAIN_STRING.fullmatch(text) and text not in ("null", "true", "false"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def first_values(space: SearchSpace) -> dict[str, Any]:
    """One value of each parameter (an interval's low end, a choice's first value): a point to compose."""
    return {name: d.choices[0] if isinstance(d, CategoricalDistribution) else d.low for name, d in space.items()}


def every_choice(space: SearchSpace) -> list[dict[str, Any]]:
    """``first_values`` with one categorical parameter changed to each of its other choices, and the high end
    of every numeric one: the points to compose so that every option a trial may get is known to exist."""
    base = first_values(space)
    points = [{**base, **{n: d.high for n, d in space.items() if not isinstance(d, CategoricalDistribution)}}]
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            points.extend({**base, name: choice} for choice in dist.choices[1:])
    return points
