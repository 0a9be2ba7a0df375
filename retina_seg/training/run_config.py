"""The config a training run uses: Hydra's composition, then the values settled on top of it (hparams file under
the command line, the sweep's epoch scale) and checked. `retina-seg-train` settles it in the run
(pipeline.prepare_config); ``train_config`` gives the same config to whatever builds a run in process."""

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from ..config import apply_hparams_file, command_line_keys, validate_config
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
