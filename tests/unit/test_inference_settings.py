"""conf/predict.yaml and conf/export.yaml compose, and every bad value is refused naming its key: a wrong type
by Hydra (the schema), a value out of range by our rules."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

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


@pytest.mark.parametrize(
    "override, message",
    [
        ("mode=sliding", "mode='sliding' must be one of ['auto', 'whole', 'tiles', 'resize']"),
        ("tile.overlap=300", "tile.overlap=300 must be an integer >= 0 and at most half of tile.size"),
        ("tile.size=8", "tile.size=8 must be an integer >= 16"),
        ("threshold=1.5", "threshold=1.5 must be null (the checkpoint's) or a number in (0, 1)"),
        ("batch_size=0", "batch_size=0 must be an integer >= 1"),
        ("overlay.color=[0,300,0]", "overlay.color=[0, 300, 0] must be three integers in 0..255 (R, G, B)"),
        ("overlay.alpha=2", "overlay.alpha=2.0 must be a number in [0, 1]"),
        ("device=gpu0", "device='gpu0' must be auto or a torch device this machine has"),
        ("num_workers=-1", "num_workers=-1 must be an integer >= 0"),
        ("scale.tolerance=1.5", "scale.tolerance=1.5 must be a number in [0, 1)"),
        ("scale.train_fov_diameter=-3", "scale.train_fov_diameter=-3.0 must be null (the checkpoint's) or pixels > 0"),
    ],
)
def test_bad_predict_values_name_their_key(override, message):
    with pytest.raises(ConfigError) as error:
        predict_settings(compose([*REQUIRED, override], config_name="predict"))
    assert str(error.value).startswith(f"invalid config: {message}")


def test_every_bad_predict_value_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        predict_settings(compose([*REQUIRED, "batch_size=0", "mode=sliding"], config_name="predict"))
    assert str(error.value) == (
        "invalid config: mode='sliding' must be one of ['auto', 'whole', 'tiles', 'resize']; "
        "batch_size=0 must be an integer >= 1"
    )


@pytest.mark.parametrize(
    "override, key",
    [
        ("flip_tta=sometimes", "flip_tta"),
        ("scale.train_fov_diameter=wide", "scale.train_fov_diameter"),
        ("detect_fov=maybe", "detect_fov"),
        ("tile.size=large", "tile.size"),
        ("overlay.color=green", "overlay.color"),
        ("tile.sise=256", "tile.sise"),
        ("treshold=0.5", "treshold"),
        ("scale.tolerance=null", "scale.tolerance"),
    ],
)
def test_wrong_types_and_unknown_keys_are_hydras_refusal(override, key):
    with pytest.raises(ConfigCompositionException) as error:
        compose([*REQUIRED, override], config_name="predict")
    assert f"full_key: {key}" in str(error.value.__cause__)


def test_export_defaults_and_bad_values():
    settings = export_settings(compose(REQUIRED[:1] + ["output=out"], config_name="export"))
    assert settings.formats == ["pt2", "onnx", "safetensors", "torchscript"]
    assert settings.run_dir == Path("run").resolve() and settings.parity_sizes == [(584, 565), (512, 512)]
    for override, message in (
        (
            "formats=[tflite]",
            "formats=['tflite'] must be a non-empty list of ['pt2', 'onnx', 'safetensors', 'torchscript']",
        ),
        ("formats=[]", "formats=[] must be a non-empty list"),
        ("parity.tolerance=0", "parity.tolerance=0.0 must be a number > 0"),
        ("parity.sizes=[[8,8]]", "parity.sizes=[[8, 8]] must be a non-empty list of [height, width] pairs"),
        ("onnx_opset=7", "onnx_opset=7 must be an integer >= 9"),
    ):
        with pytest.raises(ConfigError) as error:
            export_settings(compose([REQUIRED[0], "output=out", override], config_name="export"))
        assert str(error.value).startswith(f"invalid config: {message}")
    for override, key in (
        ("formats=onnx", "formats"),
        ("parity.sizes=[[584,wide]]", "parity.sizes"),
        ("onnx_opsett=17", "onnx_opsett"),
    ):
        with pytest.raises(ConfigCompositionException) as error:
            compose([REQUIRED[0], "output=out", override], config_name="export")
        assert f"full_key: {key}" in str(error.value.__cause__)
