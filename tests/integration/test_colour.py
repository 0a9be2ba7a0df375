"""data.colour=fov_standardized on real photographs of three cameras, and from a training run's checkpoint to
retina-seg-predict: recorded, applied, and absent from an old checkpoint."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from retina_seg.data.colour import TARGET_MEAN, TARGET_STD, ColourStandard
from retina_seg.data.fov import detect_fov
from retina_seg.data.io import read_image
from retina_seg.data.layouts import chase_db1_samples, drive_samples, stare_samples
from retina_seg.data.loading import load_samples
from retina_seg.evaluation.checkpoint_eval import evaluate
from retina_seg.inference.predictor import VesselPredictor
from retina_seg.inference.run import predict_files
from retina_seg.inference.settings import predict_settings
from retina_seg.inference.writers import MASK_SUFFIX
from retina_seg.records.checkpoint import PAYLOAD_KEY, save_checkpoint_file
from tests.helpers.runs import TINY_NET, compose

PER_SET = 3


@pytest.fixture(scope="module")
def three_cameras(drive_root, stare_root, chase_db1_root):
    """The first training photographs of DRIVE, STARE and CHASE_DB1, FOVs as training loads them."""
    layouts = {"DRIVE": (drive_samples, drive_root), "STARE": (stare_samples, stare_root)}
    layouts["CHASE_DB1"] = (chase_db1_samples, chase_db1_root)
    return {
        name: load_samples(layout(root, "train")[:PER_SET], detect_missing_fov=True)
        for name, (layout, root) in layouts.items()
    }


def test_every_camera_gets_the_target_statistics_and_the_sets_come_together(three_cameras):
    standard = ColourStandard()
    before, after = {}, {}
    for name, samples in three_cameras.items():
        inside = [standard.apply(s.image, s.fov)[s.fov].astype(float) for s in samples]
        for pixels in inside:
            np.testing.assert_allclose(pixels.mean(axis=0), TARGET_MEAN, atol=2.0)
            # Saturated red (the optic disc, some whole photographs) is clipped at 255: red's std may fall short.
            np.testing.assert_allclose(pixels.std(axis=0)[1:], TARGET_STD[1:], rtol=0.15)
            assert TARGET_STD[0] * 0.75 <= pixels.std(axis=0)[0] <= TARGET_STD[0] * 1.02
        before[name] = np.mean([s.image[s.fov].mean(axis=0) for s in samples], axis=0)
        after[name] = np.mean([pixels.mean(axis=0) for pixels in inside], axis=0)
    spread = {key: np.ptp(np.stack(list(means.values())), axis=0) for key, means in (("b", before), ("a", after))}
    assert (spread["a"] < 2.0).all() and (spread["b"][1:] > 20).all(), spread


@pytest.fixture(scope="module")
def coloured_checkpoint(tmp_path_factory) -> Path:
    from retina_seg.training.pipeline import train

    out = tmp_path_factory.mktemp("colour_run")
    train(compose([*TINY_NET, "data.colour=fov_standardized"], out), out, "0")
    return out / "checkpoints" / "best.ckpt"


def _without_colour(checkpoint: Path, folder: Path) -> Path:
    """The same weights in a checkpoint written before the option: no colour entry at all."""
    content = torch.load(checkpoint, map_location="cpu", weights_only=True)
    del content[PAYLOAD_KEY]["colour"]
    path = folder / "old.ckpt"
    save_checkpoint_file(content, path)
    return path


def _predicted_masks(checkpoint: Path, images: list[Path], output: Path, threshold: float) -> dict[str, np.ndarray]:
    listed = f"[{','.join(map(str, images))}]"
    overrides = [f"ckpt_path={checkpoint}", f"input={listed}", f"output={output}", "mode=whole"]
    overrides.append(f"threshold={threshold}")
    settings = predict_settings(compose([*overrides, "progress_bar=false", "num_workers=0"], config_name="predict"))
    summary = predict_files(settings)
    assert summary["predicted"] == len(images), summary["failed"]
    return {path.stem: np.asarray(Image.open(output / f"{path.stem}{MASK_SUFFIX}")) > 0 for path in images}


def test_training_records_the_standard_and_prediction_applies_it_unlike_an_old_checkpoint(
    coloured_checkpoint, drive_root, tmp_path
):
    payload = torch.load(coloured_checkpoint, map_location="cpu", weights_only=True)[PAYLOAD_KEY]
    assert payload["colour"] == ColourStandard().to_payload()
    old = _without_colour(coloured_checkpoint, tmp_path)
    images = sorted((drive_root / "test" / "images").glob("*.tif"))[:2]
    predictor = VesselPredictor.from_checkpoint(coloured_checkpoint)
    old_predictor = VesselPredictor.from_checkpoint(old)
    assert predictor.colour == ColourStandard() and old_predictor.colour is None
    photographs = {path.stem: (image := read_image(path), detect_fov(image)) for path in images}  # predict's FOV
    probabilities = {stem: predictor.predict(ColourStandard().apply(*photo)) for stem, photo in photographs.items()}
    # A barely trained net's probabilities are all small: a threshold at their median inside the first FOV makes
    # masks with many vessels, so a missing colour step would change many pixels.
    _, first_fov = next(iter(photographs.values()))
    threshold = float(np.median(next(iter(probabilities.values()))[first_fov]))
    coloured = _predicted_masks(coloured_checkpoint, images, tmp_path / "coloured", threshold)
    plain = _predicted_masks(old, images, tmp_path / "old", threshold)
    for stem, (image, fov) in photographs.items():
        expected = (probabilities[stem] >= threshold) & fov
        expected_old = (old_predictor.predict(image) >= threshold) & fov
        # Batched and single forward passes may round apart at the threshold: a handful of pixels at most.
        assert (coloured[stem] != expected).mean() < 1e-3
        assert (plain[stem] != expected_old).mean() < 1e-3
        assert (coloured[stem] != plain[stem]).mean() > 0.01  # the same weights, other colours: other masks


def _evaluated(checkpoint: Path, folder: Path) -> dict:
    overrides = [f"ckpt_path={checkpoint}", "data.source.n_test=2", "trainer.enable_progress_bar=false"]
    return evaluate(compose(overrides, folder, config_name="eval"), folder)


def test_evaluation_repeats_the_checkpoints_standard_and_an_old_checkpoint_scores_without_it(
    coloured_checkpoint, tmp_path
):
    coloured = _evaluated(coloured_checkpoint, tmp_path / "coloured")
    old = _evaluated(_without_colour(coloured_checkpoint, tmp_path), tmp_path / "old")
    assert coloured["config"]["data"]["colour"] == "fov_standardized" and old["config"]["data"]["colour"] is None
    assert coloured["test_AUC"] != old["test_AUC"]
