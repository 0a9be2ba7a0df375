"""Names changed in this release. Old option names still work for one release: each old file only pulls in
the new one, and a run that chose an old name logs which name replaces it (remove an entry together with its
file). The old key data.augmentation is refused where an edit under it would silently do something else."""

import logging

from omegaconf import DictConfig, OmegaConf

from .config import ConfigError

log = logging.getLogger(__name__)

# Config group -> {old option: new option}; the old option is conf/<group>/<old>.yaml.
RENAMED_OPTIONS = {
    "model": {"unet_seed": "unet_reference"},
    "augmentation": {"seed": "reference"},
}
# Primary configs chosen with -cn: old name -> new name (sweeps/<old>.yaml).
RENAMED_CONFIGS = {"seed_table": "reference_table"}


def deprecated_names(hydra_cfg: DictConfig) -> list[str]:
    """One message per old name the run was composed with (Hydra's record of the options it chose)."""
    messages = [
        f"{group}={chosen} is deprecated and will be removed in the next release; use {group}={renamed[chosen]}"
        for group, renamed in RENAMED_OPTIONS.items()
        if (chosen := hydra_cfg.runtime.choices.get(group)) in renamed
    ]
    config_name = hydra_cfg.job.config_name
    if config_name in RENAMED_CONFIGS:
        messages.append(
            f"-cn {config_name} is deprecated and will be removed in the next release; "
            f"use -cn {RENAMED_CONFIGS[config_name]}"
        )
    return messages


def warn_deprecated_names(hydra_cfg: DictConfig) -> None:
    for message in deprecated_names(hydra_cfg):
        log.warning(message)


def check_augmentation_key(cfg: DictConfig) -> None:
    """The augmentation group moved from data.augmentation to the top-level key augmentation; the data configs
    hand it on as `augmentation: ${augmentation}`. An old edit under data.augmentation cannot keep working:
    Hydra refuses `data.augmentation.<key>=` but its `+` and `++` forms would replace the whole group with the
    edited keys alone, so anything but the interpolation is an error naming the new key."""
    data = cfg.get("data")
    if data is None or ("augmentation" in data and OmegaConf.is_interpolation(data, "augmentation")):
        return
    raise ConfigError(
        "data.augmentation must stay ${augmentation}, the augmentation group handed to the datamodule; "
        "edit the group at its own key: augmentation.<key>=<value> (e.g. augmentation.train.crop."
        "height=192 or ~augmentation.train.rotate) instead of data.augmentation.<key>=<value>"
    )
