"""retina_seg.scoring: VesselMetrics against hand counts, its edge cases and dataset-level merging; clDice on
hand-made masks; per-image counts and predict's Counts; binary annotations scored as each protocol asks."""

import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from retina_seg.scoring.agreement import MaskAgreement
from retina_seg.scoring.centrelines import CentrelineDice, cldice
from retina_seg.scoring.counts import SCORES, Counts, confusion, image_counts
from retina_seg.scoring.pooled import VesselMetrics, summarize

# One 2x3 image: probabilities, truth and FOV (the last column is outside the FOV).
PROBS = torch.tensor([[[0.9, 0.3, 0.8], [0.6, 0.1, 0.7]]])
TRUTH = torch.tensor([[[1, 1, 0], [0, 0, 1]]])
FOV = torch.tensor([[[True, True, False], [True, True, False]]])


def filled(probs=PROBS, truth=TRUTH, fov=FOV, bins=1000):
    metrics = VesselMetrics(bins=bins)
    metrics.update(probs, truth, fov)
    return metrics


def hand_confusion(probs, truth, fov, threshold):
    """Confusion counts the direct way, for comparison."""
    pred, truth = probs >= threshold, truth.bool()
    return {
        "TP": float((pred & truth & fov).sum()),
        "FP": float((pred & ~truth & fov).sum()),
        "FN": float((~pred & truth & fov).sum()),
        "TN": float((~pred & ~truth & fov).sum()),
    }


def test_confusion_inside_fov_by_hand():
    # FOV pixels: (0.9, vessel) (0.3, vessel) (0.6, bg) (0.1, bg); threshold 0.5 -> TP 1, FN 1, FP 1, TN 1
    assert filled().confusion(0.5, "fov") == {"TP": 1.0, "FP": 1.0, "FN": 1.0, "TN": 1.0}


def test_confusion_over_all_pixels_by_hand():
    # adds (0.8, bg) -> FP and (0.7, vessel) -> TP
    assert filled().confusion(0.5, "all") == {"TP": 2.0, "FP": 2.0, "FN": 1.0, "TN": 1.0}


def test_scores_by_hand():
    scores = filled().scores(0.5, "all")  # TP 2, FP 2, FN 1, TN 1
    assert scores == pytest.approx(
        {"IoU": 2 / 5, "Dice": 4 / 7, "accuracy": 3 / 6, "sensitivity": 2 / 3, "specificity": 1 / 3, "precision": 2 / 4}
    )


@pytest.mark.parametrize("threshold", [0.05, 0.25, 0.55, 0.65, 0.85, 0.95])
def test_confusion_matches_direct_count_on_random_data(threshold):
    gen = torch.Generator().manual_seed(1)
    probs = torch.rand(3, 1, 17, 23, generator=gen)
    truth = torch.rand(3, 1, 17, 23, generator=gen) < probs  # correlated, like a real model
    fov = torch.rand(3, 1, 17, 23, generator=gen) < 0.8
    metrics = filled(probs, truth, fov)
    assert metrics.confusion(threshold, "fov") == hand_confusion(probs, truth, fov, threshold)
    assert metrics.confusion(threshold, "all") == hand_confusion(probs, truth, torch.ones_like(fov), threshold)


def test_threshold_rounds_to_nearest_grid_point():
    metrics = filled(bins=10)
    assert metrics.grid_index(0.64) == 6 and metrics.grid_index(0.66) == 7
    # 0.64 -> 0.6: the 0.6 background pixel is predicted vessel; 0.66 -> 0.7: it is not
    assert metrics.confusion(0.64)["FP"] == 1.0 and metrics.confusion(0.66)["FP"] == 0.0


def test_fov_none_counts_every_pixel():
    metrics = VesselMetrics()
    metrics.update(PROBS, TRUTH)
    assert metrics.confusion(0.5, "fov") == metrics.confusion(0.5, "all") == filled().confusion(0.5, "all")


def test_empty_truth_and_empty_prediction_score_one():
    metrics = filled(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), None)
    scores = metrics.scores(0.5)
    assert scores["IoU"] == scores["Dice"] == scores["accuracy"] == 1.0
    assert scores["sensitivity"] == scores["specificity"] == scores["precision"] == 1.0
    assert math.isnan(metrics.auc())


def test_missing_every_vessel_scores_zero():
    metrics = filled(torch.zeros(1, 4, 4), torch.ones(1, 4, 4), None)
    scores = metrics.scores(0.5)
    assert scores["IoU"] == scores["Dice"] == scores["sensitivity"] == 0.0


def test_auc_of_perfect_and_reversed_ranking():
    truth = torch.tensor([[[0, 0, 0, 1, 1]]])
    probs = torch.tensor([[[0.1, 0.2, 0.3, 0.7, 0.9]]])
    assert filled(probs, truth, None).auc() == pytest.approx(1.0)
    assert filled(1 - probs, truth, None).auc() == pytest.approx(0.0)


def test_auc_matches_pairwise_definition():
    gen = torch.Generator().manual_seed(2)
    probs = torch.rand(1, 10, 10, generator=gen)
    truth = torch.rand(1, 10, 10, generator=gen) < probs
    pos, neg = probs[truth], probs[~truth]
    pairwise = ((pos[:, None] > neg[None]).double() + 0.5 * (pos[:, None] == neg[None]).double()).mean()
    # Ties are only within a bin of 1/100000: effectively the exact Mann-Whitney AUC.
    assert filled(probs, truth, None, bins=100_000).auc() == pytest.approx(pairwise.item(), abs=1e-4)


def test_best_threshold_finds_known_optimum():
    # vessels at 0.35 and 0.45, background at 0.15 and 0.25: any threshold in (0.25, 0.35] is perfect
    probs = torch.tensor([[[0.15, 0.25, 0.35, 0.45]]])
    truth = torch.tensor([[[0, 0, 1, 1]]])
    metrics = filled(probs, truth, None, bins=100)
    assert metrics.best_threshold("IoU") == pytest.approx(0.26)  # lowest grid point of the optimum
    assert metrics.scores(metrics.best_threshold("Dice"))["Dice"] == 1.0
    assert metrics.best_threshold("IoU", lo=0.4, hi=0.9) == pytest.approx(0.4)


def test_best_threshold_rejects_unknown_metric_and_bad_range():
    with pytest.raises(ValueError, match="metric"):
        filled().best_threshold("AUC")
    with pytest.raises(ValueError, match="lo"):
        filled().best_threshold(lo=0.9, hi=0.1)


def test_two_updates_equal_one_update_of_concatenation():
    gen = torch.Generator().manual_seed(3)
    probs = torch.rand(4, 1, 9, 11, generator=gen)
    truth = torch.rand(4, 1, 9, 11, generator=gen) < probs
    fov = torch.rand(4, 1, 9, 11, generator=gen) < 0.7
    merged = VesselMetrics()
    merged.update(probs[:1], truth[:1], fov[:1])
    merged.update(probs[1:], truth[1:], fov[1:])
    whole = filled(probs, truth, fov)
    for name in ("pos_fov", "neg_fov", "pos_all", "neg_all"):
        assert torch.equal(getattr(merged, name), getattr(whole, name))
    assert merged.compute() == whole.scores(0.5, "fov")
    # dataset-level: not the mean of per-batch IoUs
    per_batch = [filled(probs[i : i + 1], truth[i : i + 1], fov[i : i + 1]).scores()["IoU"] for i in range(4)]
    assert merged.scores()["IoU"] != pytest.approx(sum(per_batch) / 4)


def test_states_are_float64_sum_reduced_histograms():
    metrics = VesselMetrics(bins=50)
    for name in ("pos_fov", "neg_fov", "pos_all", "neg_all"):
        state = getattr(metrics, name)
        assert state.dtype == torch.float64 and state.shape == (50,)
        assert metrics._reductions[name] is not None  # dist_reduce_fx="sum"
    metrics.update(PROBS, TRUTH, FOV)
    metrics.reset()
    assert metrics.pos_all.sum() == 0


def test_probability_one_and_zero_land_in_edge_bins():
    metrics = filled(torch.tensor([[[0.0, 1.0]]]), torch.tensor([[[0, 1]]]), None, bins=10)
    assert metrics.neg_all[0] == 1 and metrics.pos_all[-1] == 1


def test_bad_shapes_and_region_raise():
    with pytest.raises(ValueError, match="same"):
        VesselMetrics().update(PROBS, TRUTH[..., :2])
    with pytest.raises(ValueError, match="region"):
        filled().scores(0.5, region="outside")


def test_summarize_names():
    flat = summarize(filled(), threshold=0.5, prefix="test")
    for suffix in ("", "_all"):
        for name in (*SCORES, "AUC"):
            assert isinstance(flat[f"test_{name}{suffix}"], float)
    assert flat["test_IoU_all"] == pytest.approx(2 / 5)
    assert len(flat) == 2 * (len(SCORES) + 1)


def _ddp_worker(rank, world_size, port, results):
    """One rank of a 2-process gloo group: each rank sees half the data."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    gen = torch.Generator().manual_seed(4)
    probs = torch.rand(2, 1, 8, 8, generator=gen)
    truth = torch.rand(2, 1, 8, 8, generator=gen) < probs
    metrics = VesselMetrics(bins=100)
    metrics.update(probs[rank : rank + 1], truth[rank : rank + 1])
    results[rank] = (metrics.confusion(0.5), summarize(metrics, 0.5, "val"), metrics.pos_all.sum().item())
    dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_queries_sum_over_ddp_ranks():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    results = mp.Manager().dict()
    mp.start_processes(_ddp_worker, args=(2, port, results), nprocs=2, join=True, start_method="fork")
    gen = torch.Generator().manual_seed(4)
    probs = torch.rand(2, 1, 8, 8, generator=gen)
    truth = torch.rand(2, 1, 8, 8, generator=gen) < probs
    whole = filled(probs, truth, None, bins=100)
    for rank in range(2):
        confusion, flat, local_positives = results[rank]
        assert confusion == whole.confusion(0.5)
        assert flat == pytest.approx(summarize(whole, 0.5, "val"), nan_ok=True)
        assert local_positives == truth[rank].sum().item()  # local state restored after the query


def test_cldice_of_identical_and_disjoint_lines():
    truth = np.zeros((15, 15), dtype=bool)
    truth[2:13, 6:9] = True
    assert cldice(truth, truth) == pytest.approx(1.0)
    shifted = np.roll(truth, 5, axis=1)
    assert cldice(shifted, truth) == 0.0


def test_cldice_by_hand_on_a_broken_line():
    truth = np.zeros((11, 11), dtype=bool)
    truth[5, 1:10] = True  # a 1-px line is its own skeleton: 9 pixels
    pred = truth.copy()
    pred[5, 4:6] = False  # a gap: Tprec = 7/7 = 1, Tsens = 7/9
    t_sens = 7 / 9
    assert cldice(pred, truth) == pytest.approx(2 * t_sens / (1 + t_sens))


def test_cldice_empty_masks():
    empty, line = np.zeros((5, 5), dtype=bool), np.eye(5, dtype=bool)
    assert cldice(empty, empty) == 1.0
    assert cldice(empty, line) == 0.0 and cldice(line, empty) == 0.0
    with pytest.raises(ValueError, match="2-D"):
        cldice(line[None], line[None])


def test_centreline_dice_pools_skeleton_counts_over_images():
    first = np.zeros((11, 11), dtype=bool)
    first[5, 1:10] = True  # 9-pixel line
    gap = first.copy()
    gap[5, 4:6] = False  # Tprec 7/7, Tsens 7/9 on its own
    second = np.zeros((11, 11), dtype=bool)
    second[1:10, 5] = True  # found perfectly
    metric = CentrelineDice()
    metric.update(torch.from_numpy(np.stack([gap, second])), torch.from_numpy(np.stack([first, second])))
    pooled_sens = (7 + 9) / (9 + 9)  # counts add up before the ratio: not the mean of per-image clDice
    values = metric.compute()
    assert values["all"] == pytest.approx(2 * pooled_sens / (1 + pooled_sens))
    assert values["fov"] == values["all"]  # no FOV given: everything is inside
    per_image_mean = (cldice(gap, first) + cldice(second, second)) / 2
    assert values["all"] != pytest.approx(per_image_mean)


def test_centreline_dice_inside_the_fov_ignores_what_lies_outside():
    truth = np.zeros((11, 11), dtype=bool)
    truth[5, 1:10] = True
    pred = truth.copy()
    pred[1, 1:10] = True  # a false vessel...
    fov = np.ones_like(truth)
    fov[:3] = False  # ...outside the field of view
    metric = CentrelineDice()
    metric.update(*(torch.from_numpy(a[None]) for a in (pred, truth, fov)))
    values = metric.compute()
    assert values["fov"] == pytest.approx(1.0)
    assert values["all"] == pytest.approx(cldice(pred, truth)) and values["all"] < 1.0


def test_predicted_map_matches_the_counted_confusion():
    probs = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    truth = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(4)) < 0.3
    metrics = filled(probs, truth, None, bins=100)
    pred = metrics.predicted(probs, 0.437)
    assert metrics.confusion(0.437)["TP"] == float((pred & truth).sum())
    assert metrics.confusion(0.437)["FP"] == float((pred & ~truth).sum())


def test_counts_of_masks_follow_the_empty_convention():
    truth = np.array([[1, 1, 0, 0]], dtype=bool)
    assert confusion(np.array([[1, 0, 1, 0]], dtype=bool), truth) == Counts(tp=1, fp=1, fn=1)
    assert Counts().iou == Counts().dice == 1.0  # nothing to find, nothing found
    assert Counts(1, 1, 1).iou == pytest.approx(1 / 3) and Counts(1, 1, 1).dice == 0.5


@pytest.mark.parametrize("images", [1, 3])
def test_image_counts_are_each_images_own_inside_the_region(images):
    gen = torch.Generator().manual_seed(5)
    probs = torch.rand(images, 1, 9, 7, generator=gen)
    truth = torch.rand(images, 1, 9, 7, generator=gen) < probs
    fov = torch.rand(images, 1, 9, 7, generator=gen) < 0.7
    counts = image_counts(probs >= 0.5, truth, fov)
    for i in range(images):
        assert {name: float(values[i]) for name, values in counts.items()} == hand_confusion(
            probs[i], truth[i], fov[i], 0.5
        )


def annotated_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1x4 annotation and truth with the last pixel outside the FOV: TP 1, FN 1 inside, one FP outside."""
    return np.array([[1, 0, 0, 1]], bool), np.array([[1, 1, 0, 0]], bool), np.array([[1, 1, 1, 0]], bool)


def test_mask_agreement_scores_each_protocols_way():
    agreement = MaskAgreement(centrelines=False)
    agreement.add(*annotated_pair())
    agreement.add(np.ones((1, 4), bool), np.ones((1, 4), bool), np.ones((1, 4), bool))  # perfect: TP 4
    assert agreement.scores("fov", "pooled") == pytest.approx({"IoU": 5 / 6, "Dice": 10 / 11})
    assert agreement.scores("all", "pooled") == pytest.approx({"IoU": 5 / 7, "Dice": 10 / 12})
    assert agreement.scores("fov", "per_image") == pytest.approx({"IoU": (1 / 2 + 1) / 2, "Dice": (2 / 3 + 1) / 2})
    assert agreement.scores("all", "per_image") == pytest.approx({"IoU": (1 / 3 + 1) / 2, "Dice": (1 / 2 + 1) / 2})
    with pytest.raises(ValueError, match="averaging"):
        agreement.scores("fov", "median")


def test_mask_agreement_summary_has_a_models_names_without_auc():
    agreement = MaskAgreement()
    agreement.add(*annotated_pair())
    summary = agreement.summary("test")
    assert set(summary) == {f"test_{s}{r}" for s in (*SCORES, "clDice") for r in ("", "_all")}
    assert summary["test_IoU"] == pytest.approx(1 / 2) and summary["test_IoU_all"] == pytest.approx(1 / 3)
