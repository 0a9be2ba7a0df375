"""conf/predict.yaml and conf/export.yaml compose, and every bad value is refused naming its key."""
from pathlib import Path

import pytest

from retina_seg.config import ConfigError
from retina_seg.inference.settings import export_settings, predict_settings
from tests.helpers.runs import compose

REQUIRED = ["ckpt_path=run/checkpoints/best.ckpt", "input=photos", "output=out"]


def test_predict_defaults():
    settings = predict_settings(compose(REQUIRED, config_name="predict"))
    assert (settings.tiling.mode, settings.tiling.tile_size, settings.tiling.tile_overlap) == ("auto", 512, 128)
    assert settings.threshold is None and settings.masks is None and settings.detect_fov
    assert settings.flip_tta is None  # as the checkpoint was validated
    assert settings.inputs == ["photos"] and settings.output == Path("out") and settings.device == "cpu"
    assert settings.tiling.plan_kind(584, 565) == "whole" and settings.tiling.plan_kind(2336, 3504) == "tiles"
    assert settings.tiling.scale_aware and settings.scale.train_fov_diameter is None  # the checkpoint's


@pytest.mark.parametrize("override, key", [
    ("mode=sliding", "mode="), ("tile.overlap=300", "tile.overlap=300"), ("tile.size=8", "tile.size=8"),
    ("threshold=1.5", "threshold=1.5"), ("batch_size=0", "batch_size=0"), ("overlay.color=[0,300,0]", "overlay.color"),
    ("overlay.alpha=2", "overlay.alpha=2"), ("device=gpu0", "device='gpu0'"), ("num_workers=-1", "num_workers=-1"),
    ("flip_tta=sometimes", "flip_tta='sometimes'"), ("scale.tolerance=1.5", "scale.tolerance=1.5"),
    ("scale.train_fov_diameter=-3", "scale.train_fov_diameter=-3"), ("scale.train_fov_diameter=wide", "wide"),
])
def test_bad_predict_values_name_their_key(override, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[")):
        predict_settings(compose([*REQUIRED, override], config_name="predict"))


def test_export_defaults_and_bad_values():
    settings = export_settings(compose(REQUIRED[:1] + ["output=out"], config_name="export"))
    assert settings.formats == ["torchscript", "onnx", "safetensors"]
    assert settings.run_dir == Path("run").resolve() and settings.parity_sizes == [(584, 565), (512, 512)]
    for override, key in (("formats=[tflite]", "formats="), ("parity.tolerance=0", "parity.tolerance"),
                          ("parity.sizes=[[8,8]]", "parity.sizes")):
        with pytest.raises(ConfigError, match=key):
            export_settings(compose([REQUIRED[0], "output=out", override], config_name="export"))
