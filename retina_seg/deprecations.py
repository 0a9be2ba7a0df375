"""Old option names that still work for one release. Each old file only pulls in the new one; a run that
chose an old name logs which name replaces it. Remove an entry together with its file."""
import logging

from omegaconf import DictConfig

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
    messages = [f"{group}={chosen} is deprecated and will be removed in the next release; use {group}={renamed[chosen]}"
                for group, renamed in RENAMED_OPTIONS.items()
                if (chosen := hydra_cfg.runtime.choices.get(group)) in renamed]
    config_name = hydra_cfg.job.config_name
    if config_name in RENAMED_CONFIGS:
        messages.append(f"-cn {config_name} is deprecated and will be removed in the next release; "
                        f"use -cn {RENAMED_CONFIGS[config_name]}")
    return messages


def warn_deprecated_names(hydra_cfg: DictConfig) -> None:
    for message in deprecated_names(hydra_cfg):
        log.warning(message)
