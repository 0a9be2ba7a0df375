"""A bundled model end to end: made from a tiny trained checkpoint by `python -m retina_seg.bundle`, then used by
name (ckpt_path=bundled:<name>) by retina-seg-predict, -eval and -export, and by predict without ckpt_path."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from retina_seg.data.synthetic import synthesize_fundus
from retina_seg.inference.predictor import VesselPredictor
from retina_seg.records.bundle import BUNDLED_MODELS_ENV, CARD_JSON, CARD_MARKDOWN, WEIGHTS_FILE
from retina_seg.records.run_folder import read_metrics
from tests.helpers.runs import run_main

# The test split of the tiny run's synthetic set (TINY_RUN), as retina-seg-eval's overrides select it.
TINY_TEST_SET = (
    "data.source.n_train=4 data.source.n_val=2 data.source.n_test=2 data.source.height=64 data.source.width=64"
)
RETRAIN = "retina-seg-train data.source.n_train=4 trainer.max_epochs=2"


@pytest.fixture(scope="module")
def models(tiny_checkpoint, tmp_path_factory) -> Path:
    """A folder of bundled models holding the tiny checkpoint as `tiny`, made by the command."""
    folder = tmp_path_factory.mktemp("bundled_models")
    result = run_main(
        "retina_seg.bundle",
        f"--ckpt={tiny_checkpoint}",
        "--name=tiny",
        f"--into={folder}",
        "--test",
        "synthetic",
        TINY_TEST_SET,
        f"--retrain={RETRAIN}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@pytest.fixture
def bundled(models, monkeypatch) -> Path:
    monkeypatch.setenv(BUNDLED_MODELS_ENV, str(models))
    return models / "tiny"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for seed in range(2):
        Image.fromarray(synthesize_fundus(seed, 80, 96)[0]).save(folder / f"photo{seed}.png")
    return folder


def test_the_card_holds_what_the_predictor_needs_and_what_a_reader_checks(tiny_checkpoint, bundled):
    card = json.loads((bundled / CARD_JSON).read_text())
    payload = torch.load(tiny_checkpoint, weights_only=True)["retina_seg"]
    assert card["run_info"] == payload
    assert card["fov_diameter"] == payload["fov_diameter"] and card["threshold"] == payload["threshold"]
    assert card["sources"] == ["Synthetic"]
    assert set(card["test_scores"]["synthetic"]) == {"Dice", "IoU", "AUC", "clDice"}
    assert card["retrain_command"] == RETRAIN
    assert card["test_sets"] == {"synthetic": TINY_TEST_SET}
    assert card["checkpoint_sha256"] == hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert card["weights_sha256"] == hashlib.sha256((bundled / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert card["machine"]["cores"] >= 1 and card["created"]
    markdown = (bundled / CARD_MARKDOWN).read_text()
    assert RETRAIN in markdown and f"retina-seg-eval ckpt_path=bundled:tiny {TINY_TEST_SET} split=test" in markdown


def test_the_bundle_predicts_exactly_as_its_checkpoint(tiny_checkpoint, bundled):
    from_checkpoint = VesselPredictor.from_checkpoint(tiny_checkpoint, channels_last=False)
    from_bundle = VesselPredictor.from_checkpoint("bundled:tiny", channels_last=False)
    image = synthesize_fundus(7, 80, 96)[0]
    assert from_bundle.info == from_checkpoint.info
    assert np.array_equal(from_bundle.predict(image), from_checkpoint.predict(image))


def test_eval_by_name_reproduces_the_cards_scores(bundled, tmp_path):
    card = json.loads((bundled / CARD_JSON).read_text())
    result = run_main("retina_seg.eval", "ckpt_path=bundled:tiny", *TINY_TEST_SET.split(), f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(tmp_path)
    assert metrics["checkpoint"] == "bundled:tiny"
    for name, value in card["test_scores"]["synthetic"].items():
        assert metrics[f"test_{name}"] == pytest.approx(value, abs=1e-6)


def test_predict_without_ckpt_path_uses_the_bundled_model_and_says_so(tiny_checkpoint, bundled, photos, tmp_path):
    default = run_main("retina_seg.predict", f"input={photos}", f"output={tmp_path / 'bundled'}", "progress_bar=false")
    assert default.returncode == 0, default.stderr[-3000:]
    summary = json.loads((bundled / CARD_JSON).read_text())["summary"]
    said = default.stdout + default.stderr
    assert "predicting with the bundled model tiny" in said and summary in said
    assert json.loads((tmp_path / "bundled" / "predictions.json").read_text())["checkpoint"] == "bundled:tiny"
    named = run_main(
        "retina_seg.predict",
        f"ckpt_path={tiny_checkpoint}",
        f"input={photos}",
        f"output={tmp_path / 'checkpoint'}",
        "progress_bar=false",
    )
    assert named.returncode == 0, named.stderr[-3000:]
    for photo in photos.iterdir():
        for kind in ("mask", "prob"):
            name = f"{photo.stem}_{kind}.png"
            assert (tmp_path / "bundled" / name).read_bytes() == (tmp_path / "checkpoint" / name).read_bytes()


def test_predict_without_ckpt_path_and_no_bundled_model_fails_clearly(photos, tmp_path, monkeypatch):
    monkeypatch.setenv(BUNDLED_MODELS_ENV, str(tmp_path / "none"))
    result = run_main("retina_seg.predict", f"input={photos}", f"output={tmp_path / 'out'}")
    assert result.returncode == 2
    assert "no ckpt_path given and no bundled model is installed" in result.stderr
    assert not (tmp_path / "out" / "predictions.json").exists()


def test_export_by_name_exports_the_bundled_weights(bundled, tmp_path):
    result = run_main(
        "retina_seg.export",
        "ckpt_path=bundled:tiny",
        "formats=[safetensors]",
        "parity.sizes=[[64,64]]",
        f"output={tmp_path}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["checkpoint"]["path"] == str(bundled / WEIGHTS_FILE)
    assert card["checkpoint"]["sha256"] == json.loads((bundled / CARD_JSON).read_text())["weights_sha256"]
