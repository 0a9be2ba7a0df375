"""The one way a config value is checked and refused.

Types are Hydra's: each entrypoint's schema (config_schemas.py) makes an unknown key, a wrong type or a null
where none is allowed Hydra's own error. Values are ours: each entrypoint lists its Rules (a key, a test, what
the value must be) and ``check_config`` reports every broken one at once, in one format:
``invalid config: threshold=1.5 must be null (the checkpoint's) or a number in (0, 1)``.
``check_config`` lets a null pass: whether one is allowed is a question of type, and under train's config
groups, which have no schema, a null means unset. Those groups have no types either, so every rule tests the
type of its value too (the helpers below do). ``rule_problem`` checks one value against one rule, a null included
(train's hparams file, which is JSON, not Hydra).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key or file."""


@dataclass(frozen=True)
class Rule:
    """One value check of one key; ``must_be`` is the end of its message (``key=value must be ...``)."""

    key: str
    # True when the value is acceptable; it may look at the rest of the config (an image must survive the
    # network's poolings). It is given null only where a null is checked outside a schema (an hparams file).
    holds: Callable[[Any, DictConfig | None], bool]
    must_be: str


def check_config(cfg: DictConfig, rules: tuple[Rule, ...]) -> None:
    """ConfigError naming every key whose value breaks its rule, with the value and what it must be."""
    problems = []
    for rule in rules:
        for key in concrete_keys(cfg, rule.key):
            value = _plain(OmegaConf.select(cfg, key, default=None))
            if value is not None and not rule.holds(value, cfg):
                problems.append(f"{key}={value!r} must be {rule.must_be}")
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems))


def concrete_keys(cfg: DictConfig, key: str) -> list[str]:
    """The keys a rule's key names: itself, or, for a key with one ``.*.`` (data.source.sources.*.n_val), that
    key for every entry of the mapping in the star's place (each source of data=multi)."""
    if ".*." not in key:
        return [key]
    head, tail = key.split(".*.", 1)
    mapping = OmegaConf.select(cfg, head, default=None)
    return [f"{head}.{name}.{tail}" for name in mapping] if isinstance(mapping, DictConfig) else []


def rule_problem(rule: Rule, value: Any, cfg: DictConfig | None = None) -> str | None:
    """What ``value`` must be for ``rule.key`` when it breaks the rule, else None."""
    return None if rule.holds(value, cfg) else rule.must_be


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rule(key: str, holds: Callable[[Any, DictConfig | None], bool], must_be: str, nullable: bool) -> Rule:
    if nullable:
        return Rule(key, lambda v, cfg: v is None or holds(v, cfg), must_be)
    return Rule(key, holds, must_be)


def integer(key: str, low: int | None = None, nullable: bool = False) -> Rule:
    """An integer (at least ``low``); with ``nullable``, or null."""
    must_be = "an integer" if low is None else f"an integer >= {low}"
    return _rule(
        key,
        lambda v, cfg: is_int(v) and (low is None or v >= low),
        f"null or {must_be}" if nullable else must_be,
        nullable,
    )


def positive(key: str) -> Rule:
    return _rule(key, lambda v, cfg: is_number(v) and v > 0, "a number > 0", False)


def fraction(key: str, must_be: str, ends: str = "()", nullable: bool = False) -> Rule:
    """A number between 0 and 1, ``ends`` saying which are allowed ("()", "[)", "[]"); ``must_be`` says so
    (and what a null means where one is allowed)."""
    above = (lambda v: v > 0) if ends[0] == "(" else (lambda v: v >= 0)
    below = (lambda v: v < 1) if ends[1] == ")" else (lambda v: v <= 1)
    return _rule(key, lambda v, cfg: is_number(v) and above(v) and below(v), must_be, nullable)


def one_of(key: str, choices: tuple[str, ...]) -> Rule:
    return _rule(key, lambda v, cfg: v in choices, f"one of {list(choices)}", False)


def folder_to_write(key: str) -> Rule:
    """A folder that exists or can be made: not a file already there (someone's file is never replaced)."""
    return _rule(
        key,
        lambda v, cfg: Path(str(v)).is_dir() or not Path(str(v)).exists(),
        "a folder (existing or to create), not a file",
        False,
    )
