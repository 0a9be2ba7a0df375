"""Config helpers shared by the entrypoints: the reference's hparams JSON files and secret-free dumps."""
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

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


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key or file."""


def apply_hparams_file(cfg: DictConfig) -> None:
    """Map the keys of ``cfg.hparams_file`` onto the config; an unknown key or bad file is an error."""
    if not cfg.get("hparams_file"):
        return
    path = Path(cfg.hparams_file)
    try:
        values = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"hparams_file {path}: cannot be read ({error.strerror})") from error
    except json.JSONDecodeError as error:
        raise ConfigError(f"hparams_file {path}: not valid JSON ({error})") from error
    if not isinstance(values, dict):
        raise ConfigError(f"hparams_file {path}: expected a JSON object of hyperparameters")
    unknown = sorted(set(values) - set(HPARAMS_KEYS))
    if unknown:
        raise ConfigError(f"hparams_file {path}: unknown key(s) {unknown}; known: {sorted(HPARAMS_KEYS)}")
    with open_dict(cfg):
        for key, value in values.items():
            OmegaConf.update(cfg, HPARAMS_KEYS[key], value, merge=False)


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data, for metrics.json and loggers (it never holds secrets:
    API keys are read from the environment only, never from the config)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
