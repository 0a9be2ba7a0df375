"""benchmarks/human_baseline.py on the real Kaggle and DRIVE test sets: the Kaggle masks are DRIVE's first observer
on a 512x512 grid, and DRIVE's second observer is scored on that grid under each protocol."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from benchmarks import quality
from benchmarks.human_baseline import human_scores
from retina_seg.records.protocols import PER_IMAGE_SCORES, PROTOCOLS, REFERENCE
from tests.helpers.environment import REPO_ROOT
from tests.helpers.runs import run_main


def test_the_first_observer_on_the_grid_is_every_kaggle_test_mask(drive_root, kaggle_root):
    scores = human_scores(drive_root, kaggle_root, observer="first")
    assert set(scores) == set(PROTOCOLS)
    assert all(value == 1.0 for protocol in scores.values() for value in protocol.values()), scores


@pytest.mark.slow
def test_the_second_observer_agrees_more_on_the_reference_masks(tmp_path, drive_root, kaggle_root):
    out = tmp_path / "human.json"
    result = run_main(
        "benchmarks.human_baseline",
        *("--drive-root", str(drive_root), "--kaggle-root", str(kaggle_root), "--json", str(out)),
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads(out.read_text())["scores"]
    reference, strict = scores["reference"], scores["strict"]
    # Both people's vessels gain the grey edge under "nonzero", so the two annotations overlap more.
    assert strict["IoU"] < reference["IoU"] < 1 and strict["Dice"] < reference["Dice"] < 1
    last = result.stdout.strip().splitlines()[-1]
    assert last == f"second observer's test IoU on the Kaggle grid, the reference's protocol: {reference['IoU']:.4f}"


@pytest.mark.slow
def test_a_kaggle_mask_not_made_from_drive_is_named(tmp_path, drive_root, kaggle_root):
    test = tmp_path / "kaggle" / "test"
    shutil.copytree(kaggle_root / "test", test)
    mask_path = test / "mask" / "3.png"
    mask = np.array(Image.open(mask_path))
    row, column = np.argwhere(mask == 255)[0]
    mask[row, column] = 0  # one vessel pixel removed
    Image.fromarray(mask).save(mask_path)
    result = run_main(
        "benchmarks.human_baseline",
        *("--drive-root", str(drive_root), "--kaggle-root", str(tmp_path / "kaggle")),
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode != 0
    assert f"{mask_path}: not {drive_root / 'test' / '1st_manual' / '04_manual1.gif'} resized" in result.stderr


@pytest.mark.slow
def test_the_quality_benchmark_prints_the_person_beside_the_models(capsys, drive_root, kaggle_root):
    args = SimpleNamespace(drive_root=drive_root, kaggle_root=kaggle_root)
    human = quality.second_observer(args)
    model = {REFERENCE.key("test", name): 0.5 for name in PER_IMAGE_SCORES}
    quality.report_reference_protocol({0: model}, human)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == (
        "DRIVE's second observer (a person) on the same grid, measured the same way: "
        f"IoU {human['IoU']:.4f}, Dice {human['Dice']:.4f}"
    )
