"""The bundle contract (retina_seg/records/bundle.py): written whole, looked up by name, refused with the file named."""

import json
from pathlib import Path

import pytest
import torch

from retina_seg.models.unet import UNet
from retina_seg.records.bundle import (
    BUNDLED_MODELS_ENV,
    CARD_JSON,
    MAX_WEIGHTS_BYTES,
    WEIGHTS_FILE,
    BundleError,
    default_model_name,
    load_network,
    write_bundle,
)
from retina_seg.records.checkpoint import RunInfo

MODEL = {"_target_": "retina_seg.models.unet.UNet", "depth": 2, "base_width": 4}
INFO = RunInfo(model=MODEL, normalize={"normalization": "image_per_channel"}, threshold=0.4, fov_diameter=60.0)


def _card(name: str) -> dict:
    return {
        "name": name,
        "summary": f"{name}: a test bundle",
        "sources": ["Synthetic"],
        "fov_diameter": INFO.fov_diameter,
        "threshold": INFO.threshold,
        "test_scores": {"synthetic": {"Dice": 0.5}},
        "retrain_command": "retina-seg-train",
        "created": "2026-01-01T00:00:00+00:00",
        "machine": {"cpu": "test"},
        "run_info": INFO.to_payload(),
    }


@pytest.fixture
def models(tmp_path, monkeypatch) -> Path:
    """An empty folder of bundled models, where the lookup looks."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv(BUNDLED_MODELS_ENV, str(folder))
    return folder


def _bundle(models: Path, name: str = "small") -> tuple[Path, torch.nn.Module]:
    net = UNet(depth=2, base_width=4).eval()
    write_bundle(models / name, net.state_dict(), _card(name), "# small\n")
    return models / name, net


def test_a_bundle_loads_the_network_it_was_written_from(models):
    folder, net = _bundle(models)
    loaded, info = load_network("bundled:small")
    assert info == INFO
    image = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(loaded(image), net(image))
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "card.md", "weights.safetensors"]
    assert [p.name for p in models.iterdir()] == ["small"]  # no staging folder left


def test_weights_over_the_limit_are_refused_and_nothing_is_written(models):
    too_big = {"weights": torch.zeros(MAX_WEIGHTS_BYTES // 4 + 1)}  # float32: 4 bytes each
    with pytest.raises(BundleError, match="more than the 2,000,000"):
        write_bundle(models / "big", too_big, _card("big"), "")
    assert list(models.iterdir()) == []


def test_an_existing_bundle_is_replaced_only_on_purpose(models):
    folder, _ = _bundle(models)
    with pytest.raises(BundleError, match="already exists"):
        _bundle(models)
    card = write_bundle(folder, UNet(depth=2, base_width=4).state_dict(), _card("small") | {"summary": "new"}, "", True)
    assert json.loads((folder / CARD_JSON).read_text())["summary"] == card["summary"] == "new"
    assert [p.name for p in models.iterdir()] == ["small"]


@pytest.mark.parametrize(
    "damage, file, message",
    [
        (lambda folder: (folder / CARD_JSON).unlink(), CARD_JSON, "no such file"),
        (lambda folder: (folder / CARD_JSON).write_text("{not json"), CARD_JSON, "not JSON"),
        (lambda folder: (folder / CARD_JSON).write_text('{"name": "small"}'), CARD_JSON, "lacks"),
        (lambda folder: (folder / WEIGHTS_FILE).unlink(), WEIGHTS_FILE, "no such file"),
        (lambda folder: (folder / WEIGHTS_FILE).write_bytes(b"garbage"), WEIGHTS_FILE, "not the weights its card"),
    ],
)
def test_a_damaged_bundle_is_refused_naming_the_file(models, damage, file, message):
    folder, _ = _bundle(models)
    damage(folder)
    with pytest.raises(BundleError, match=message) as error:
        load_network("bundled:small")
    assert str(folder / file) in str(error.value)


def test_unknown_names_and_the_default_say_what_is_installed(models):
    with pytest.raises(BundleError, match="no bundled model is installed"):
        default_model_name()
    _bundle(models, "one")
    assert default_model_name() == "one"
    with pytest.raises(BundleError, match=r"no bundled model named 'two' .*\['one'\]"):
        load_network("bundled:two")
    _bundle(models, "two")
    with pytest.raises(BundleError, match=r"2 bundled models are installed.*\['one', 'two'\]"):
        default_model_name()
