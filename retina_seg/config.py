"""Config helpers shared by the entrypoints: the reference's hparams JSON files, secret-free dumps, and the
resolvers that let data loading and DDP follow the accelerator a run is given."""
import json
import os
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


# Loader workers when the node does not say how many CPUs the task has: beyond about this many, more workers
# only cost memory for one GPU's worth of 512x512 batches.
MAX_DEFAULT_WORKERS = 8


def on_gpu(accelerator: str) -> bool:
    """True when ``trainer.accelerator`` puts the run on a CUDA GPU ("auto" asks the machine it runs on)."""
    if str(accelerator) in ("gpu", "cuda"):
        return True
    if str(accelerator) == "auto":
        import torch

        return torch.cuda.is_available()
    return False


def loader_workers(accelerator: str) -> int:
    """Data-loader worker processes for a run: none on CPU (they would compete with the training threads
    for the same cores); on a GPU, every CPU of the task but the one the training process needs, as SLURM
    grants them (``SLURM_CPUS_PER_TASK``), else the CPUs this process may use, at most MAX_DEFAULT_WORKERS."""
    if not on_gpu(accelerator):
        return 0
    granted = os.environ.get("SLURM_CPUS_PER_TASK")
    if granted and granted.isdigit():
        return max(0, int(granted) - 1)
    return max(0, min(MAX_DEFAULT_WORKERS, len(os.sched_getaffinity(0)) - 1))


def gpus_per_node(accelerator: str, devices) -> int | None:
    """GPUs a SLURM job asks for: one per device when the run is on GPUs (decided from the config alone,
    since the submitting machine may have none), else none."""
    return int(devices) if str(accelerator) in ("gpu", "cuda") and isinstance(devices, int) else None


OmegaConf.register_new_resolver("retina_seg.on_gpu", on_gpu, replace=True)
OmegaConf.register_new_resolver("retina_seg.loader_workers", loader_workers, replace=True)
OmegaConf.register_new_resolver("retina_seg.gpus_per_node", gpus_per_node, replace=True)


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


# Keys whose type and range are checked before anything is built: (key, type, check, what it must be).
_CHECKS = (
    ("seed", int, lambda v: True, "an integer"),
    ("trainer.max_epochs", int, lambda v: v >= 1, "an integer >= 1"),
    ("data.batch_size", int, lambda v: v >= 1, "an integer >= 1"),
    ("data.num_workers", int, lambda v: v >= 0, "an integer >= 0"),
    ("data.train_repeats", int, lambda v: v >= 1, "an integer >= 1"),
    ("optimizer.lr", (int, float), lambda v: v > 0, "a number > 0"),
    ("module.threshold", (int, float, type(None)), lambda v: v is None or 0 < v < 1, "null or in (0, 1)"),
)


def validate_config(cfg: DictConfig) -> None:
    """Reject wrong types and ranges of the keys users override most, naming the key and the value."""
    problems = []
    for key, kind, check, expected in _CHECKS:
        value = OmegaConf.select(cfg, key, default=None)
        if value is None and type(None) not in (kind if isinstance(kind, tuple) else (kind,)):
            continue
        if isinstance(value, bool) or not isinstance(value, kind) or not check(value):
            problems.append(f"{key}={value!r} must be {expected}")
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems))
