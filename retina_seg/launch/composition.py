"""A config composed as an entrypoint's command line composes it, without running the entrypoint: for the code
that builds runs in process (tests, benchmarks) and for checking the documentation's commands."""

from collections.abc import Sequence
from pathlib import Path

from hydra import version
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.config_search_path import SearchPathQuery
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from ..config import CONF_DIR
from .resources import register_resolvers


def compose_config(
    entrypoint: str,
    overrides: Sequence[str],
    config_name: str | None = None,
    config_dir: str | Path | None = None,
) -> DictConfig:
    """Hydra's composition for ``retina-seg-<entrypoint> [-cd config_dir] [-cn config_name] overrides``, Hydra's
    own node included (it is not resolved: the ``hydra:`` resolver works only inside a run). As the command line
    does, conf/ is the main config folder and ``-cd`` adds a folder searched before it."""
    register_resolvers()
    search_path = create_config_search_path(CONF_DIR)
    if config_dir is not None:
        search_path.prepend(
            provider="command-line", path=f"file://{config_dir}", anchor=SearchPathQuery(provider="schema")
        )
    version.setbase("1.3")
    Hydra.create_main_hydra2(task_name=entrypoint, config_search_path=search_path)
    try:
        return GlobalHydra.instance().hydra.compose_config(
            config_name=config_name or entrypoint, overrides=list(overrides), run_mode=RunMode.RUN, from_shell=False
        )
    finally:
        GlobalHydra.instance().clear()


def run_config(composed: DictConfig) -> DictConfig:
    """``composed`` without Hydra's node, as Hydra hands it to the entrypoint's function (changed in place)."""
    with open_dict(composed):
        del composed["hydra"]
    return composed
