"""The values a run folder's run was trained with, compared with a new command's: its command-line overrides as
Hydra recorded them (``.hydra/overrides.yaml``). A sweep resumed into its folders (sweeps/resume.py) and a run
rerun into its own folder (sweeps/folder_locks.py) refuse to continue a run with other values than it was trained
with; a rerun may change only CHANGEABLE_ON_RESUME, and the resumed run records those changes in metrics.json
(``resumed_with_changes``)."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..config import ConfigError

RECORDED_OVERRIDES = Path(".hydra") / "overrides.yaml"
RECORDED_CONFIG = Path(".hydra") / "config.yaml"

# The one list of what a rerun into a run's folder may change (docs/run-folder.md): how far it trains (a larger
# max_epochs extends it), whether it resumes, where its files are, what it shows and where it logs; never what it
# trains. An entry covers its sub-keys: "logger" covers logger=comet and logger.comet.offline=true.
CHANGEABLE_ON_RESUME = (
    "trainer.max_epochs",
    "resume",
    "skip_completed",
    "paths",
    "logger",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "callbacks.progress_bar",
)
UNSET = "(unset)"
# What a recorded file that cannot be read raises while it is parsed.
UNREADABLE = (OSError, yaml.YAMLError, TypeError, ValueError, OverrideParseException)


def covered(key: str, entries: Sequence[str]) -> bool:
    """Whether ``key`` is one of ``entries`` or lies under one of them."""
    return any(key == entry or key.startswith(f"{entry}.") for entry in entries)


def override_values(overrides: Sequence[str], ignored: Sequence[str] = ()) -> dict[str, tuple[Any, str]]:
    """``{key: (value, as typed)}`` of Hydra overrides, values parsed (``1e-3`` equals ``0.001``), without the
    keys ``ignored`` covers."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {
        o.get_key_element(): (None, "(deleted)") if o.is_delete() else (o.value(), o.get_value_element_as_str())
        for o in parsed
        if not covered(o.key_or_group, ignored)
    }


def override_changes(
    recorded: Sequence[str], wanted: Sequence[str], ignored: Sequence[str] = ()
) -> dict[str, tuple[str, str]]:
    """``{key: (recorded value, wanted value)}``, as typed (UNSET where a side lacks the key), of every override
    key in which two command lines differ, sorted; ``ignored`` covers the keys left out."""
    old, new = override_values(recorded, ignored), override_values(wanted, ignored)
    unset = (None, UNSET)
    return {
        key: (old.get(key, unset)[1], new.get(key, unset)[1])
        for key in sorted(set(old) | set(new))
        if old.get(key, unset)[0] != new.get(key, unset)[0] or (key in old) != (key in new)
    }


def read_overrides(run_dir: Path) -> list[str]:
    """The overrides recorded in ``run_dir``; one of UNREADABLE when the file cannot be read."""
    recorded = yaml.safe_load((run_dir / RECORDED_OVERRIDES).read_text()) or []
    if not isinstance(recorded, list):
        raise ValueError(f"{run_dir / RECORDED_OVERRIDES} is not a list of overrides")
    return [str(override) for override in recorded]


def refuse_changed_rerun(run_dir: Path, overrides: Sequence[str], config: DictConfig) -> None:
    """ConfigError when ``run_dir`` holds a run whose overrides differ from ``overrides`` (the new command's,
    composed into ``config``) beyond CHANGEABLE_ON_RESUME: resuming it would continue a checkpoint trained with
    other values, and record the new ones. Call it before Hydra rewrites the folder's ``.hydra/``."""
    if not (run_dir / RECORDED_OVERRIDES).exists():
        return
    try:
        changes = override_changes(read_overrides(run_dir), overrides, CHANGEABLE_ON_RESUME)
    except UNREADABLE as error:
        raise ConfigError(
            f"{run_dir} holds a run whose {RECORDED_OVERRIDES} cannot be read ({error}), so it is not resumed "
            "with these values; use a new hydra.run.dir"
        ) from error
    if not changes:
        return
    recorded_config = _recorded_config(run_dir)
    differing = "; ".join(
        f"{key}: {_shown(old, recorded_config, key)} -> {_shown(new, config, key)}"
        for key, (old, new) in changes.items()
    )
    raise ConfigError(
        f"{run_dir} holds a run trained with other values, which resuming would continue ({differing}); "
        f"rerun it with its own values (only {', '.join(CHANGEABLE_ON_RESUME)} may change) or use a new hydra.run.dir"
    )


def _recorded_config(run_dir: Path) -> DictConfig | None:
    try:
        recorded = OmegaConf.load(run_dir / RECORDED_CONFIG)
    except (OSError, yaml.YAMLError, OmegaConfBaseException):
        return None
    return recorded if isinstance(recorded, DictConfig) else None


def _shown(as_typed: str, config: DictConfig | None, key: str) -> str:
    """A side's value as typed, or where its command line did not set it, its config's value."""
    if as_typed != UNSET or config is None:
        return as_typed
    try:
        value = OmegaConf.select(config, key.lstrip("+~"), default=None)
    except OmegaConfBaseException:
        return as_typed
    if isinstance(value, DictConfig):
        return as_typed
    return as_typed if value is None else f"{value} (not on its command line)"


def changes_on_resume(recorded: dict[str, Any] | None, config: dict[str, Any]) -> dict[str, list[Any]]:
    """``{key: [value the run began with, value now]}`` for each CHANGEABLE_ON_RESUME key whose resolved value
    differs from the one in the folder's metrics.json (``recorded``); earlier resumes' changes are carried, each
    with the value the run began with. Nothing when the folder records no config."""
    if not recorded or not isinstance(recorded.get("config"), dict):
        return {}
    earlier = recorded.get("resumed_with_changes") or {}
    changes = {}
    for key in CHANGEABLE_ON_RESUME:
        old = earlier[key][0] if key in earlier else _value_at(recorded["config"], key)
        new = _value_at(config, key)
        if old != new:
            changes[key] = [old, new]
    return changes


def _value_at(config: dict[str, Any], key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
