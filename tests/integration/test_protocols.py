"""The mask rule and the evaluation protocols end to end on real Kaggle photographs: a brief run trained on the
reference's masks (every non-zero pixel) records its rule and both protocols' scores; retina-seg-eval repeats
them from the checkpoint alone; retina-seg-predict scores against masks binarised by the checkpoint's rule."""

import csv
import json

import numpy as np
import pytest
import torch

from retina_seg.data.fov import detect_fov
from retina_seg.data.io import read_image, read_mask
from retina_seg.evaluation.checkpoint_eval import evaluate
from retina_seg.inference.run import predict_files
from retina_seg.inference.settings import predict_settings
from retina_seg.inference.writers import SCORES_CSV
from retina_seg.records.checkpoint import PAYLOAD_KEY
from retina_seg.records.run_folder import read_metrics, read_test_images
from retina_seg.training.pipeline import train
from tests.helpers.runs import compose

# A run trained on the Kaggle set.
pytestmark = [pytest.mark.real_data, pytest.mark.slow]

TEST_IMAGES = 3
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def _number(path) -> int:
    return int(path.stem)


def kaggle(root, *overrides: str) -> list[str]:
    return ["data=retina_kaggle", f"data.root={root}", f"data.source.limit_test={TEST_IMAGES}", *overrides]


@pytest.fixture(scope="module")
def nonzero_run(kaggle_root, tmp_path_factory):
    """One epoch of a narrow U-Net on 8 Kaggle images whose masks are binarised as the reference's."""
    out = tmp_path_factory.mktemp("nonzero_run")
    overrides = kaggle(
        kaggle_root,
        "data.source.limit_train=8",
        "data.source.n_val=4",
        "data.source.mask_rule=nonzero",
        "augmentation=crops",
        "model.base_width=8",
        "trainer.max_epochs=1",
        "callbacks=minimal",
        "logger=none",
        "seed=0",
        *QUIET,
    )
    train(compose(overrides, out), out, "0")
    return out


def test_a_run_records_its_mask_rule_and_the_reference_protocol(nonzero_run):
    metrics = read_metrics(nonzero_run)
    assert metrics["status"] == "completed" and metrics["mask_rule"] == "nonzero"
    assert 0 <= metrics["test_IoU_reference_protocol"] <= 1 and 0 <= metrics["test_Dice_reference_protocol"] <= 1
    assert metrics["test_IoU_reference_protocol"] != metrics["test_IoU"]  # per image, all pixels, at 0.5
    best = torch.load(nonzero_run / "checkpoints" / "best.ckpt", weights_only=True)
    assert best[PAYLOAD_KEY]["mask_rule"] == "nonzero"


def test_a_run_writes_each_test_images_scores_under_both_protocols(nonzero_run, kaggle_root):
    metrics, rows = read_metrics(nonzero_run), read_test_images(nonzero_run)
    photographs = [path.stem for path in sorted((kaggle_root / "test" / "image").glob("*.png"), key=_number)]
    for protocol in ("strict", "reference"):
        assert [row["image"] for row in rows if row["protocol"] == protocol] == photographs[:TEST_IMAGES]
    reference = [row["IoU"] for row in rows if row["protocol"] == "reference"]
    # The reference protocol is the mean of the per-image scores; strict pools pixels, so its mean differs.
    assert np.mean(reference) == pytest.approx(metrics["test_IoU_reference_protocol"], abs=1e-6)
    reference_dice = [row["Dice"] for row in rows if row["protocol"] == "reference"]
    assert np.mean(reference_dice) == pytest.approx(metrics["test_Dice_reference_protocol"], abs=1e-6)
    strict = [row["IoU"] for row in rows if row["protocol"] == "strict"]
    assert min(strict) <= metrics["test_IoU"] <= max(strict) and strict != reference


def test_eval_repeats_both_protocols_from_the_checkpoint(nonzero_run, kaggle_root, tmp_path):
    trained = read_metrics(nonzero_run)
    ckpt = nonzero_run / "checkpoints" / "best.ckpt"
    record = evaluate(
        compose(
            kaggle(kaggle_root, f"ckpt_path={ckpt}", "protocols=[strict,reference]", *QUIET),
            tmp_path,
            config_name="eval",
        ),
        tmp_path,
    )
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test_IoU"] == record["test_IoU"] and set(written["protocols"]) == {"strict", "reference"}
    assert record["mask_rule"] == "nonzero"  # the checkpoint's rule, without being told
    assert record["test_IoU"] == pytest.approx(trained["test_IoU"], abs=1e-6)
    assert record["test_IoU_reference_protocol"] == pytest.approx(trained["test_IoU_reference_protocol"], abs=1e-6)
    evaluated_rows, trained_rows = read_test_images(tmp_path), read_test_images(nonzero_run)
    assert [(r["image"], r["protocol"]) for r in evaluated_rows] == [(r["image"], r["protocol"]) for r in trained_rows]
    assert [r["IoU"] for r in evaluated_rows] == pytest.approx([r["IoU"] for r in trained_rows], abs=1e-6)
    half = evaluate(
        compose(
            kaggle(kaggle_root, f"ckpt_path={ckpt}", "mask_rule=half", *QUIET), tmp_path / "half", config_name="eval"
        ),
        tmp_path / "half",
    )
    assert half["mask_rule"] == "half" and abs(half["test_IoU"] - record["test_IoU"]) > 1e-3
    assert "test_IoU_reference_protocol" not in half  # protocols=[strict] by default


def test_predict_scores_against_masks_binarised_by_the_checkpoints_rule(nonzero_run, kaggle_root, tmp_path):
    images = sorted((kaggle_root / "test" / "image").glob("*.png"))[:TEST_IMAGES]
    inputs = tmp_path / "images"
    inputs.mkdir()
    for image in images:
        (inputs / image.name).symlink_to(image)
    cfg = compose(
        [
            f"ckpt_path={nonzero_run / 'checkpoints' / 'best.ckpt'}",
            f"input={inputs}",
            f"masks={kaggle_root / 'test' / 'mask'}",
            f"output={tmp_path / 'out'}",
            "progress_bar=false",
            "num_workers=0",
        ],
        config_name="predict",
    )
    assert np.isfinite(predict_files(predict_settings(cfg))["overall"]["IoU"])
    rows = {row["image"]: row for row in csv.DictReader((tmp_path / "out" / SCORES_CSV).open())}
    vessels = {
        rule: sum(
            int((read_mask(kaggle_root / "test" / "mask" / image.name, rule) & detect_fov(read_image(image))).sum())
            for image in images
        )
        for rule in ("half", "nonzero")
    }
    assert vessels["nonzero"] > vessels["half"] * 1.2  # the grey edges of the resized masks
    overall = rows["overall"]
    scored = int(overall["TP"]) + int(overall["FN"])  # the vessel pixels predict scored against
    assert scored == pytest.approx(vessels["nonzero"], rel=0.005), (overall, vessels)  # its FOV: within a few px
