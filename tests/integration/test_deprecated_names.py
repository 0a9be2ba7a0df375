"""Old option names (retina_seg/deprecations.py) compose to exactly what their new names compose to, and a run
that chose one is told the new name; a run with the new names is told nothing. An edit under the old key
data.augmentation is refused (retina-seg-train's refusals: tests/integration/test_train_run.py)."""

import json

import pytest
from omegaconf import OmegaConf, open_dict

from retina_seg.deprecations import RENAMED_CONFIGS, RENAMED_OPTIONS, deprecated_names
from retina_seg.launch.composition import compose_config
from tests.helpers.runs import TINY_RUN, compose, run_main
from tests.helpers.sweeps import SWEEPS_DIR

RENAMED = [(group, old, new) for group, renamed in RENAMED_OPTIONS.items() for old, new in renamed.items()]


def resolved(overrides, tmp_path):
    return OmegaConf.to_container(compose(overrides, tmp_path), resolve=True)


@pytest.mark.parametrize("group, old, new", RENAMED)
def test_old_option_composes_to_the_new_one(group, old, new, tmp_path):
    assert resolved([f"{group}={old}"], tmp_path) == resolved([f"{group}={new}"], tmp_path)


@pytest.mark.parametrize("group, old, new", RENAMED)
def test_old_option_is_named_with_its_replacement_and_the_new_one_is_not(group, old, new):
    assert deprecated_names(compose_config("train", [f"{group}={old}"]).hydra) == [
        f"{group}={old} is deprecated and will be removed in the next release; use {group}={new}"
    ]
    assert deprecated_names(compose_config("train", [f"{group}={new}"]).hydra) == []


@pytest.mark.parametrize("old, new", RENAMED_CONFIGS.items())
def test_old_sweep_file_composes_to_the_new_one_and_is_named(old, new):
    point = ["+reference=job_18808", "paths.output_dir=/run"]
    old_cfg, new_cfg = (compose_config("train", point, name, str(SWEEPS_DIR)) for name in (old, new))
    assert OmegaConf.to_container(old_cfg.hydra.sweeper) == OmegaConf.to_container(new_cfg.hydra.sweeper)
    for cfg in (old_cfg, new_cfg):
        with open_dict(cfg):
            del cfg.hydra  # Hydra's own node resolves only inside a run
    assert OmegaConf.to_container(old_cfg, resolve=True) == OmegaConf.to_container(new_cfg, resolve=True)
    assert deprecated_names(compose_config("train", [], old, str(SWEEPS_DIR)).hydra) == [
        f"-cn {old} is deprecated and will be removed in the next release; use -cn {new}"
    ]
    assert deprecated_names(compose_config("train", [], new, str(SWEEPS_DIR)).hydra) == []


@pytest.mark.slow
def test_a_run_with_an_old_name_trains_the_new_option_and_logs_the_warning(tmp_path):
    small = [
        "model.depth=2",
        "model.base_width=4",
        "trainer.max_epochs=1",
        "test=false",
        "logger=none",
        "trainer.enable_progress_bar=false",
    ]
    result = run_main("retina_seg.train", *TINY_RUN, "model=unet_seed", *small, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    warning = "model=unet_seed is deprecated and will be removed in the next release; use model=unet_reference"
    assert warning in result.stdout + result.stderr
    recorded = json.loads((tmp_path / "metrics.json").read_text())["config"]["model"]
    assert recorded == resolved(["model=unet_reference", *small], tmp_path)["model"]


def test_eval_refuses_an_edit_under_the_old_augmentation_key(tmp_path):
    result = run_main(
        "retina_seg.eval",
        "ckpt_path=none.ckpt",
        "+data.augmentation.train.clahe={_target_:x}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 2 and "data.augmentation must stay ${augmentation}" in result.stderr
    assert "augmentation.train.crop.height=192" in result.stderr and "Traceback" not in result.stderr
