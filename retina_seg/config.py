"""Config helpers shared by the entrypoints: the reference's hparams JSON files, secret-free dumps, train's
value checks. Importing it registers every entrypoint's schema (config_schemas.py) with Hydra, and the resolver
of the exit codes Hydra's --help ends with; the resolvers that ask the machine and the job are launch/resources.py's."""

import json
import logging
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from .config_rules import ConfigError, Rule, check_config, rule_problem
from .config_schemas import TRAIN_RULES, register_schemas
from .exit_codes import SUMMARY

log = logging.getLogger(__name__)

# The Hydra config tree (top-level conf/ of the checkout; the package is installed in editable mode).
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

# The reference project's JSON keys and where they land in our config.
HPARAMS_KEYS = {
    "epochs": "trainer.max_epochs",
    "batch_size": "data.batch_size",
    "learning_rate": "optimizer.lr",
    "lr": "optimizer.lr",
    "threshold": "module.threshold",
}


OmegaConf.register_new_resolver("retina_seg.exit_codes", lambda: SUMMARY, replace=True)
register_schemas()
_TRAIN_RULE = {rule.key: rule for rule in TRAIN_RULES}


def apply_hparams_file(cfg: DictConfig, command_line_keys: set[str] = frozenset()) -> None:
    """Map the keys of ``cfg.hparams_file`` onto the config, except where the command line set the same key
    (the explicit, later word wins). An unknown key, a key given twice, a wrong type or a bad file is an error."""
    if not cfg.get("hparams_file"):
        return
    path = Path(cfg.hparams_file)
    values = _read_hparams(path)
    unknown = sorted(set(values) - set(HPARAMS_KEYS))
    if unknown:
        raise ConfigError(f"hparams_file {path}: unknown key(s) {unknown}; known: {sorted(HPARAMS_KEYS)}")
    targets: dict[str, str] = {}
    for key in values:
        if HPARAMS_KEYS[key] in targets:
            raise ConfigError(
                f"hparams_file {path}: keys {targets[HPARAMS_KEYS[key]]!r} and {key!r} both set "
                f"{HPARAMS_KEYS[key]}; keep one"
            )
        targets[HPARAMS_KEYS[key]] = key
    problems = [
        f"{key}={values[key]!r} must be {rule_problem(_TRAIN_RULE[target], values[key])}"
        for target, key in targets.items()
        if rule_problem(_TRAIN_RULE[target], values[key])
    ]
    if problems:
        raise ConfigError(f"hparams_file {path}: " + "; ".join(problems))
    with open_dict(cfg):
        for target, key in targets.items():
            if target in command_line_keys:
                log.info(
                    "hparams_file %s: %s=%r ignored, the command line sets %s=%r",
                    path,
                    key,
                    values[key],
                    target,
                    OmegaConf.select(cfg, target),
                )
            else:
                OmegaConf.update(cfg, target, values[key], merge=False)


def _read_hparams(path: Path) -> dict[str, Any]:
    try:
        values = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"hparams_file {path}: cannot be read ({error.strerror})") from error
    except json.JSONDecodeError as error:
        raise ConfigError(f"hparams_file {path}: not valid JSON ({error})") from error
    if not isinstance(values, dict):
        raise ConfigError(f"hparams_file {path}: expected a JSON object of hyperparameters")
    return values


def command_line_keys(overrides: list[str]) -> set[str]:
    """The config keys that command-line overrides (Hydra's ``overrides.task``) set explicitly."""
    return {override.key_or_group for override in OverridesParser.create().parse_overrides(overrides)}


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data, for metrics.json and loggers (it never holds secrets:
    API keys are read from the environment only, never from the config)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)


def validate_config(cfg: DictConfig, more_rules: tuple[Rule, ...] = ()) -> None:
    """Reject wrong types and ranges of the keys users override most, naming the key and the value; ``more_rules``:
    the checks a layer above defines (the objective's, retina_seg/records/objective.py), reported together."""
    check_config(cfg, (*TRAIN_RULES, *more_rules))
