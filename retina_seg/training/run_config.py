"""The config a training run uses: Hydra's composition, then the values settled on top of it (hparams file under
the command line, the sweep's epoch scale) and checked. `retina-seg-train` settles it in the run
(pipeline.prepare_config); ``train_config`` gives the same config to whatever builds a run in process."""

import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from ..config import ConfigError, apply_hparams_file, command_line_keys, validate_config
from ..deprecations import check_augmentation_key
from ..launch.composition import compose_config, run_config
from ..launch.run_settings import apply_epoch_scale
from ..records.objective import OBJECTIVE_RULES


def settle_config(cfg: DictConfig, task_overrides: Sequence[str]) -> None:
    """Apply the hparams file (where ``task_overrides``, Hydra's ``overrides.task``, do not set the same key)
    and the epoch scale, then check the result: a ConfigError names what is wrong."""
    apply_hparams_file(cfg, command_line_keys(list(task_overrides)))
    apply_epoch_scale(cfg)
    check_augmentation_key(cfg)
    validate_config(cfg, OBJECTIVE_RULES)
    check_target_arguments(cfg)


# Keys of a node with a _target_ that Hydra reads itself instead of passing them on.
HYDRA_INSTANTIATE_KEYS = {"_target_", "_partial_", "_convert_", "_recursive_", "_args_"}


def _target_nodes(node: dict, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every node of the config (``hydra`` aside) that Hydra instantiates, with its dotted key."""
    if "_target_" in node:
        yield path, node
    for key, child in node.items():
        if isinstance(child, dict) and key != "hydra":
            yield from _target_nodes(child, f"{path}.{key}" if path else str(key))


def _accepted_names(target: str) -> set[str] | None:
    """The keyword arguments ``target`` takes, or None where it takes any (``**kwargs``) or cannot be
    inspected here (instantiating it then says what is wrong)."""
    try:
        signature = inspect.signature(get_object(target))
    except (ImportError, ValueError, TypeError):
        return None
    kinds = {p.kind for p in signature.parameters.values()}
    if inspect.Parameter.VAR_KEYWORD in kinds:
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name for name, p in signature.parameters.items() if p.kind in keyword}


def check_target_arguments(cfg: DictConfig) -> None:
    """ConfigError naming a key that the class or function of its node's ``_target_`` does not take (a typo
    such as ``+optimizer.lrr=0.1``), with the keys it does take, before anything is built."""
    for path, node in _target_nodes(OmegaConf.to_container(cfg, resolve=False)):
        target = str(node["_target_"])
        accepted = _accepted_names(target)
        if accepted is None:
            continue
        unknown = sorted(str(k) for k in node if str(k) not in accepted | HYDRA_INSTANTIATE_KEYS)
        if unknown:
            keys = ", ".join(f"{path}.{key}" for key in unknown)
            raise ConfigError(f"unknown key {keys}: {target} takes {', '.join(sorted(accepted))}")


def train_config(
    overrides: Sequence[str],
    output_dir: Path | None = None,
    config_dir: str | Path | None = None,
    config_name: str = "train",
) -> DictConfig:
    """The config ``retina-seg-train [-cd config_dir] [-cn config_name] overrides`` runs with, as its run writes
    it to .hydra/config.yaml; ``output_dir`` pins ``paths.output_dir`` (Hydra's run folder exists only in a run).
    The launcher's thread count is not applied: it is this process's setting, not the config's."""
    pinned = [f"paths.output_dir={output_dir}"] if output_dir is not None else []
    composed = compose_config("train", [*overrides, *pinned], config_name, config_dir)
    task_overrides = composed.hydra.overrides.task
    cfg = run_config(composed)
    settle_config(cfg, task_overrides)
    return cfg
