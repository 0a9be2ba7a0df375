"""`retina-seg-export` end to end: .pt2, ONNX and TorchScript parity on real photographs, safetensors, model card."""

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from retina_seg.data.io import read_image
from retina_seg.inference.export import ProbabilityNet
from retina_seg.inference.predictor import VesselPredictor
from retina_seg.records.run_folder import read_metrics
from tests.helpers.environment import require
from tests.helpers.runs import run_main

EXPORT_EXTRA = ("onnx", "onnxruntime", "safetensors")
# torch 2.13 deprecates TorchScript; these tests load the TorchScript export on purpose, as long as torch can.
LOADS_TORCHSCRIPT = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory) -> tuple[Path, Path]:
    """A checkpoint from a tiny training run, exported once by the CLI (small parity sizes: the real-image
    parity test below covers the full sizes)."""
    missing = [name for name in EXPORT_EXTRA if importlib.util.find_spec(name) is None]
    require(not missing, f"the export extra is not installed (missing {missing})")
    checkpoint, out = tiny_checkpoint, tmp_path_factory.mktemp("export")
    result = run_main(
        "retina_seg.export",
        f"ckpt_path={checkpoint}",
        f"output={out}",
        f"hydra.run.dir={out / 'hydra'}",
        "parity.sizes=[[75,61],[64,64]]",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return checkpoint, out


def _real_inputs(predictor: VesselPredictor, drive_root: Path, kaggle_root: Path) -> list[np.ndarray]:
    """Normalised [1, C, H, W] inputs at two sizes: DRIVE 584x565 (height x width) and Kaggle 512x512."""
    photographs = [drive_root / "test" / "images" / "01_test.tif", kaggle_root / "test" / "image" / "1.png"]
    return [np.ascontiguousarray(predictor.whole_input(read_image(path))[None]) for path in photographs]


@LOADS_TORCHSCRIPT
def test_exports_match_pytorch_on_real_photographs_of_two_sizes(exported, drive_root, kaggle_root):
    checkpoint, out = exported
    import onnxruntime as ort

    predictor = VesselPredictor.from_checkpoint(checkpoint, channels_last=False)
    reference = ProbabilityNet(predictor.net).eval()
    scripted = torch.jit.load(str(out / "model.torchscript.pt"))
    program = torch.export.load(str(out / "model.pt2")).module()
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    for single in _real_inputs(predictor, drive_root, kaggle_root):
        batch = np.concatenate([single, single[..., ::-1]])  # a batch of two: the batch axis is dynamic too
        with torch.inference_mode():
            expected = reference(torch.from_numpy(batch)).numpy()
            from_script = scripted(torch.from_numpy(batch)).numpy()
            from_program = program(torch.from_numpy(batch)).numpy()
        from_onnx = session.run(None, {"image": batch})[0]
        assert expected.shape == from_script.shape == from_onnx.shape == (2, 1, *batch.shape[2:])
        assert from_program.shape == expected.shape
        assert np.abs(from_script - expected).max() < 1e-4
        assert np.abs(from_program - expected).max() < 1e-4
        assert np.abs(from_onnx - expected).max() < 1e-4


def test_safetensors_hold_the_weights_and_the_run_info(exported):
    from safetensors import safe_open

    checkpoint, out = exported
    predictor = VesselPredictor.from_checkpoint(checkpoint, channels_last=False)
    with safe_open(str(out / "model.safetensors"), framework="pt") as weights:
        metadata = weights.metadata()
        stored = {name: weights.get_tensor(name) for name in weights.keys()}
    expected = predictor.net.state_dict()
    assert stored.keys() == expected.keys()
    assert all(torch.equal(stored[name], expected[name]) for name in expected)
    assert json.loads(metadata["model"]) == predictor.info.model
    assert float(metadata["threshold"]) == predictor.threshold
    assert metadata["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert json.loads(metadata["fov_diameter"]) == predictor.info.fov_diameter


@LOADS_TORCHSCRIPT
def test_every_export_carries_the_training_scale(exported):
    """The FOV diameter of the training photographs (64x64 synthetic ones here) travels with each export."""
    import onnx

    checkpoint, out = exported
    diameter = torch.load(checkpoint, weights_only=True)["retina_seg"]["fov_diameter"]
    assert 50 < diameter <= 64
    onnx_props = {prop.key: prop.value for prop in onnx.load(str(out / "model.onnx")).metadata_props}
    extra = {"retina_seg.json": ""}
    torch.jit.load(str(out / "model.torchscript.pt"), _extra_files=extra)
    program_extra = {"retina_seg.json": ""}
    torch.export.load(str(out / "model.pt2"), extra_files=program_extra)
    for metadata in (onnx_props, json.loads(extra["retina_seg.json"]), json.loads(program_extra["retina_seg.json"])):
        assert json.loads(metadata["fov_diameter"]) == diameter
        assert float(metadata["threshold"]) == pytest.approx(read_metrics(checkpoint.parents[1])["threshold"])
    card = json.loads((out / "model_card.json").read_text())
    assert card["scale"]["fov_diameter"] == diameter
    assert f"Training FOV diameter: {diameter} pixels" in (out / "MODEL_CARD.md").read_text()


def test_model_card_describes_model_data_metrics_and_provenance(exported):
    checkpoint, out = exported
    card = json.loads((out / "model_card.json").read_text())
    run = read_metrics(checkpoint.parents[1])
    assert card["checkpoint"]["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert card["architecture"]["class"] == "retina_seg.models.unet.UNet"
    assert card["architecture"]["config"]["base_width"] == 4 and card["architecture"]["parameters"] > 1000
    assert card["threshold"]["value"] == pytest.approx(run["threshold"])
    assert card["threshold"]["how"].startswith("chosen on the validation split")
    assert card["input_normalization"]["mode"] == "image_per_channel"
    assert card["training"]["data_source"] == "retina_seg.data.sources.SyntheticSource"
    assert card["training"]["split"] == {"n_val": 2}
    assert card["metrics"]["values"]["test_IoU"] == pytest.approx(run["test_IoU"])
    assert {"IoU", "Dice", "AUC"} <= set(card["metrics"]["definitions"])
    assert card["config"] == run["config"]
    assert set(card["exports"]) == {"pt2", "torchscript", "onnx", "safetensors"}
    assert card["exports"]["pt2"]["load"] == "torch.export.load(path).module()"
    assert "deprecated" in card["exports"]["torchscript"]["load"]
    assert all(max(e["parity_max_abs_diff"].values()) < 1e-4 for e in card["exports"].values())
    markdown = (out / "MODEL_CARD.md").read_text()
    for heading in (
        "## Architecture",
        "## Input normalisation",
        "## Threshold",
        "## Scale",
        "## Training data and split",
        "## Metrics",
        "## Exports",
        "## Resolved training config",
    ):
        assert heading in markdown
    assert card["checkpoint"]["sha256"] in markdown


class Payload:
    """Stands for any pickled object a checkpoint might smuggle in."""


def test_a_checkpoint_with_pickled_objects_is_refused(exported, tmp_path):
    checkpoint, _ = exported
    smuggled = tmp_path / "smuggled.ckpt"
    torch.save({**torch.load(checkpoint, weights_only=True), "extra": Payload()}, smuggled)
    result = run_main(
        "retina_seg.export",
        f"ckpt_path={smuggled}",
        f"output={tmp_path / 'out'}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    )
    assert result.returncode == 2  # an unusable checkpoint is bad input
    assert f"checkpoint {smuggled}: refused, it holds pickled objects" in result.stderr
    assert not (tmp_path / "out" / "model.onnx").exists()
