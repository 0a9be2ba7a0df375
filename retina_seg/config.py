"""Config helpers shared by the entrypoints: the reference's hparams JSON files, secret-free dumps, train's
value checks, and the resolvers that let data loading and DDP follow the accelerator a run is given. Importing
it registers every entrypoint's schema (config_schemas.py) with Hydra."""

import json
import logging
import os
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from .config_rules import ConfigError, check_config, rule_problem
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


# CPU flags (Linux's /proc/cpuinfo) of bf16 arithmetic in hardware: AMX tiles (Intel Sapphire Rapids and later)
# or AVX-512 BF16 (e.g. AMD Zen 4). Without either, bf16 autocast is emulated and slower than fp32.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The BF16_CPU_FLAGS this CPU has."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split()}
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def cpu_precision() -> str:
    """The CPU recipe's precision: bf16 autocast where the CPU computes bf16 in hardware (measured with
    benchmarks/throughput.py, default net, channels_last: 2.3x the fp32 plain loop's images/s on a Xeon with AMX,
    1.67x channels_last fp32 on an AMD EPYC with AVX-512 BF16 and no AMX), fp32 elsewhere."""
    return "bf16-mixed" if cpu_bf16_flags() else "32-true"


OmegaConf.register_new_resolver("retina_seg.on_gpu", on_gpu, replace=True)
OmegaConf.register_new_resolver("retina_seg.cpu_precision", cpu_precision, replace=True)
OmegaConf.register_new_resolver("retina_seg.loader_workers", loader_workers, replace=True)
OmegaConf.register_new_resolver("retina_seg.gpus_per_node", gpus_per_node, replace=True)
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


def validate_config(cfg: DictConfig) -> None:
    """Reject wrong types and ranges of the keys users override most, naming the key and the value."""
    check_config(cfg, TRAIN_RULES)
