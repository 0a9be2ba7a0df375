"""report.html and the group-band curves at the size of a real study: a few hundred run folders written with the
run-folder contract's own writers (no training), some still running, some pending; and the outcome colours of
the best run's photographs on a prediction we choose."""

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from retina_seg.data.loading import LoadedSample
from retina_seg.inference.outcome_overlays import OUTCOME_COLOURS, PHOTOGRAPH_DIMMING, outcome_overlay
from retina_seg.records.run_folder import write_epoch_table, write_metrics
from retina_seg.reporting.plots import HIGHLIGHTED, group_curves_figure
from retina_seg.reporting.replicates import group_runs
from retina_seg.reporting.runs import read_runs
from tests.helpers.runs import run_main

GROUPS, SEEDS, EPOCHS = 100, 3, 5


def write_run(run_dir: Path, job: int, lr: float, seed: int, quality: float, running: bool) -> None:
    rows = [
        {"epoch": e, "train_loss": 1 - quality * e / EPOCHS, "val_loss": 1.1 - quality * e / EPOCHS + 0.01 * seed}
        | {"val_IoU": quality * (e + 1) / EPOCHS + 0.01 * seed}
        for e in range(2 if running else EPOCHS)
    ]
    run_dir.mkdir(parents=True)
    write_epoch_table(run_dir, rows)
    value = quality + 0.01 * seed
    write_metrics(
        run_dir,
        {
            "job_id": str(job),
            "status": "running" if running else "completed",
            "epochs": EPOCHS,
            "batch_size": 4,
            "learning_rate": lr,
            "val_IoU": value,
            "val_loss": 0.3,
            "test_IoU": None if running else value - 0.02,
            "test_loss": None if running else 0.31,
            "config": {"seed": seed, "optimizer": {"lr": lr}, "trainer": {"max_epochs": EPOCHS}},
        },
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """GROUPS learning rates x SEEDS seeds; every 7th run still running; two folders pending (no metrics.json)."""
    root = tmp_path_factory.mktemp("study")
    job = 0
    for group in range(GROUPS):
        lr = round(1e-5 * (1 + group), 8)
        for seed in range(SEEDS):
            write_run(root / str(job), job, lr, seed, 0.4 + 0.004 * group, running=job % 7 == 3)
            job += 1
    for pending in (job, job + 1):
        (root / str(pending) / ".hydra").mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def page(study) -> str:
    result = run_main("retina_seg.report", str(study))
    assert result.returncode == 0, result.stderr[-3000:]
    return (study / "report.html").read_text()


def test_the_curves_legend_names_the_best_few_groups_and_counts_the_rest(study):
    groups = group_runs(read_runs([study]))
    assert len(groups) == GROUPS
    for keys in (("val_IoU",), ("train_loss", "val_loss")):
        fig = group_curves_figure(groups, keys)
        try:
            [legend] = fig.legends
            labels = [text.get_text() for text in legend.get_texts()]
        finally:
            plt.close(fig)
        assert len(labels) == HIGHLIGHTED + 1 <= 6
        assert labels[0].startswith(f"{groups[0].key}: learning_rate=0.001 ")
        assert labels[-1] == f"{GROUPS - HIGHLIGHTED} other group(s)"


def test_the_page_holds_every_group_row_and_is_self_contained(page, study):
    groups_table = re.search(r'<table id="groups".*?</table>', page, flags=re.S).group(0)
    assert groups_table.count("<tr") == GROUPS + 1  # the header and one row per group
    assert re.search(r'<table id="runs".*?</table>', page, flags=re.S).group(0).count("<tr") == GROUPS * SEEDS + 3
    assert page.count('src="data:image/png;base64,') == 2  # the two curve figures
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "the page must fetch nothing"
    assert (study / "val_iou_curves.png").exists() and (study / "loss_curves.png").exists()


def test_the_answer_comes_first_and_names_the_best_group(page, study):
    best = group_runs(read_runs([study]))[0]
    answer = page.index('id="answer"')
    assert answer < page.index('<table id="groups"') < page.index("Learning curves")
    assert f"Best setting: {best.key}: learning_rate=0.001" in page[answer : answer + 400]


def test_a_page_without_a_best_checkpoint_says_why_it_has_no_photographs(page):
    assert re.search(r'id="no-photographs">No photographs: the best run, \d+, cannot be shown: .*best\.ckpt', page)


def test_outcomes_are_painted_in_three_colours_over_the_dimmed_photograph():
    image = np.full((8, 8, 3), 200, dtype=np.uint8)
    truth = np.zeros((8, 8), dtype=bool)
    truth[2, :4] = True  # found at [2, :2], missed at [2, 2:4]
    fov = np.ones((8, 8), dtype=bool)
    fov[7] = False
    probabilities = np.zeros((8, 8), dtype=np.float32)
    probabilities[2, :2] = 0.9
    probabilities[5, 5] = 0.9  # drawn where there is no vessel
    probabilities[7, 0] = 0.9  # outside the FOV: no outcome at all

    class Predictor:
        threshold = 0.5

        def at_training_scale(self, image, fov):
            return image

        def predict(self, image, kind):
            return probabilities

    sample = LoadedSample("eye", image, truth, fov, "0")
    overlay = outcome_overlay(sample, Predictor(), max_side=8)
    right = overlay.picture[:, 8:]
    assert overlay.picture.shape == (8, 16, 3) and (overlay.picture[:, :8] == image).all()
    assert tuple(right[2, 0]) == OUTCOME_COLOURS["true positive"]
    assert tuple(right[2, 3]) == OUTCOME_COLOURS["false negative"]
    assert tuple(right[5, 5]) == OUTCOME_COLOURS["false positive"]
    assert tuple(right[0, 0]) == (int(200 * PHOTOGRAPH_DIMMING),) * 3
    assert tuple(right[7, 0]) == (0, 0, 0)
    assert overlay.iou == pytest.approx(2 / 5)
