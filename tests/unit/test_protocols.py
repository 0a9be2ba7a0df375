"""The two evaluation protocols and the two mask rules, pinned on hand-made masks."""

import numpy as np
import pytest
import torch
from PIL import Image

from retina_seg.config import ConfigError
from retina_seg.data.errors import DataError
from retina_seg.data.io import read_mask
from retina_seg.records.protocols import REFERENCE, STRICT, protocol_named, protocols_of_the_test_loop
from retina_seg.records.run_folder import TEST_IMAGES_CSV, read_test_images, write_test_images
from retina_seg.reporting.runs import run_from_metrics
from retina_seg.reporting.table import to_csv
from retina_seg.scoring.centrelines import cldice
from retina_seg.scoring.per_image import ImageScoreTable, PerImageScores
from retina_seg.scoring.pooled import VesselMetrics


def two_images() -> tuple[torch.Tensor, torch.Tensor]:
    """Image 0: 4 vessel pixels, 2 found (IoU 1/2). Image 1: 1 vessel pixel, found (IoU 1). Nothing else predicted."""
    truth = torch.zeros(2, 1, 4, 4)
    truth[0, 0, 0, :4] = 1
    truth[1, 0, 3, 3] = 1
    probs = torch.zeros(2, 1, 4, 4)
    probs[0, 0, 0, :2] = 0.9
    probs[1, 0, 3, 3] = 0.9
    return probs, truth


def test_the_per_image_mean_differs_from_the_pooled_score():
    probs, truth = two_images()
    per_image, pooled = PerImageScores(0.5), VesselMetrics()
    per_image.update(probs, truth)
    pooled.update(probs, truth)
    assert per_image.compute()["IoU"] == pytest.approx((1 / 2 + 1) / 2)  # the reference's mean of images
    assert per_image.compute()["Dice"] == pytest.approx((2 / 3 + 1) / 2)
    assert pooled.scores(0.5, "all")["IoU"] == pytest.approx(3 / 5)  # ours: TP 3, FN 2 over the split


def test_the_reference_threshold_is_strict_and_counts_every_pixel():
    probs, truth = two_images()
    probs[1, 0, 3, 3] = 0.5  # not above 0.5: missed
    probs[1, 0, 0, 0] = 0.7  # a false vessel outside any FOV still counts: every pixel is scored
    scores = PerImageScores(0.5)
    scores.update(probs, truth)
    assert scores.compute()["IoU"] == pytest.approx((1 / 2 + 0) / 2)
    region = torch.zeros_like(truth, dtype=torch.bool)
    region[0] = True  # scored inside a region instead, image 1 has nothing to find and finds nothing: IoU 1
    inside = PerImageScores(0.5, "fov")
    inside.update(probs, truth, region)
    assert inside.compute()["IoU"] == pytest.approx((1 / 2 + 1) / 2)


def test_the_mask_rules_on_a_resized_masks_grey_edge(tmp_path):
    path = tmp_path / "mask.png"
    Image.fromarray(np.array([[0, 1, 60, 127, 128, 255]], dtype=np.uint8)).save(path)
    assert read_mask(path, "half").tolist() == [[False, False, False, False, True, True]]
    assert read_mask(path, "nonzero").tolist() == [[False, True, True, True, True, True]]
    with pytest.raises(DataError, match=r"data.source.mask_rule='above' must be one of \('half', 'nonzero'\)"):
        read_mask(path, "above")


def test_each_protocol_has_keys_of_its_own():
    assert STRICT.key("test", "IoU") == "test_IoU"
    assert REFERENCE.key("test", "IoU") == "test_IoU_reference_protocol"
    assert (REFERENCE.mask_rule, REFERENCE.threshold, REFERENCE.region, REFERENCE.averaging) == (
        "nonzero",
        0.5,
        "all",
        "per_image",
    )
    assert "threshold chosen on validation" in STRICT.describe() and "mean of per-image" in REFERENCE.describe()
    with pytest.raises(ConfigError, match=r"'pooled'.*\['strict', 'reference'\]"):
        protocol_named("pooled")


def test_the_report_shows_a_protocols_column_only_when_asked():
    record = {
        "job_id": "7",
        "status": "completed",
        "epochs": 2,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "val_IoU": 0.5,
        "val_loss": 0.3,
        "test_IoU": 0.6,
        "test_loss": 0.2,
        "test_IoU_reference_protocol": 0.7125,
        "test_Dice_reference_protocol": 0.81,
    }
    runs = [
        run_from_metrics(record, "7", [], [], "7"),
        run_from_metrics(
            {**record, "job_id": "8", "test_IoU_reference_protocol": None, "test_Dice_reference_protocol": None},
            "8",
            [],
            [],
            "8",
        ),
    ]
    strict = to_csv(runs).splitlines()
    assert "reference_protocol" not in strict[0]
    reference = to_csv(runs, "reference").splitlines()
    assert reference[0].endswith("test_IoU,test_loss,test_IoU_reference_protocol,test_Dice_reference_protocol")
    assert reference[1].endswith(",0.7125,0.8100") and reference[2].endswith(",-,-")


def test_a_run_on_the_reference_masks_measures_the_reference_protocol_while_testing():
    assert protocols_of_the_test_loop("nonzero") == (REFERENCE,)
    assert protocols_of_the_test_loop("half") == ()


def test_the_image_table_scores_each_image_once_and_agrees_with_the_per_image_mean():
    probs, truth = two_images()
    table, mean = ImageScoreTable("all"), PerImageScores(0.5)
    table.update(torch.tensor([1, 0]), probs > 0.5, truth)  # indices out of order
    table.update(torch.tensor([1]), probs[:1] > 0.5, truth[:1])  # a sampler's padding repeats index 1: ignored
    mean.update(probs, truth)
    rows = table.compute()
    assert [row["index"] for row in rows] == [0, 1]
    assert [row["IoU"] for row in rows] == pytest.approx([1.0, 1 / 2])  # image 0 was given as index 1
    assert [row["Dice"] for row in rows] == pytest.approx([1.0, 2 / 3])
    assert np.mean([row["IoU"] for row in rows]) == pytest.approx(mean.compute()["IoU"])
    assert rows[1]["clDice"] == pytest.approx(cldice((probs[0, 0] > 0.5).numpy(), truth[0, 0].bool().numpy()))


def test_the_image_table_scores_inside_the_fov_only_when_asked():
    probs, truth = two_images()
    fov = torch.zeros_like(truth, dtype=torch.bool)
    fov[:, :, 0, :2] = True  # image 0: only its two found vessel pixels; image 1: nothing inside
    inside, everywhere = ImageScoreTable("fov"), ImageScoreTable("all")
    for table in (inside, everywhere):
        table.update(torch.tensor([0, 1]), probs > 0.5, truth, fov)
    assert [row["IoU"] for row in inside.compute()] == pytest.approx([1.0, 1.0])
    assert [row["IoU"] for row in everywhere.compute()] == pytest.approx([1 / 2, 1.0])
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert ImageScoreTable().compute() == []


def test_test_images_csv_round_trips_with_text_ids_and_is_empty_when_absent(tmp_path):
    assert read_test_images(tmp_path) == []
    rows = [
        {"image": "01", "protocol": "strict", "IoU": 0.5, "Dice": 2 / 3, "clDice": 0.7},
        {"image": "01", "protocol": "reference", "IoU": 0.25, "Dice": 0.4, "clDice": 0.5},
    ]
    write_test_images(tmp_path, rows)
    assert (tmp_path / TEST_IMAGES_CSV).read_text().splitlines()[0] == "image,protocol,IoU,Dice,clDice"
    assert read_test_images(tmp_path) == rows  # "01" stays the photograph's id, not the number 1
