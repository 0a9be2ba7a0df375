"""augmentation=camera against the cameras it stands for: DRIVE photographs, augmented, must look like STARE's and
CHASE_DB1's by every measure benchmarks/camera_statistics.py takes; and the measurement itself, on real photographs."""

import json
import statistics

import albumentations as A
import numpy as np
from hydra.utils import instantiate

from benchmarks.camera_statistics import MEASURES, SETS, at_common_geometry, photograph_measures, set_measures
from retina_seg.data.layouts import drive_samples
from retina_seg.data.loading import load_samples
from tests.helpers.environment import REPO_ROOT
from tests.helpers.runs import compose, run_benchmark

SPATIAL = ("affine", "crop", "hflip", "vflip")  # they move pixels; the measures are of colour, contrast and texture
PHOTOMETRIC = ("green", "blue", "green_contrast", "sharpness", "noise")
DRAWS = 30


def test_augmented_drive_photographs_span_every_cameras_median(tmp_path, drive_root, stare_root, chase_db1_root):
    roots = {"DRIVE": drive_root, "STARE": stare_root, "CHASE_DB1": chase_db1_root}
    medians = {
        name: {m: statistics.median(p[m] for p in set_measures(name, root, 3)) for m in PHOTOMETRIC}
        for name, root in roots.items()
    }
    # What there is to bridge: CHASE_DB1 far darker than the others, and far less blue than DRIVE.
    assert medians["CHASE_DB1"]["green"] < 0.75 * min(medians["DRIVE"]["green"], medians["STARE"]["green"])
    assert medians["CHASE_DB1"]["blue"] < 0.5 * medians["DRIVE"]["blue"]
    augmentation = instantiate(compose(["augmentation=camera"], tmp_path).augmentation, _convert_="object")
    photometric = A.Compose([t for name, t in augmentation["train"].items() if name not in SPATIAL], seed=0)
    drawn = {m: [] for m in PHOTOMETRIC}
    for sample in load_samples(drive_samples(drive_root, "train")[:3]):
        image, fov, mask = at_common_geometry(sample)
        for _ in range(DRAWS):
            measured = photograph_measures(photometric(image=image)["image"], fov, mask)
            for m in PHOTOMETRIC:
                drawn[m].append(measured[m])
    for m in PHOTOMETRIC:
        low, high = np.percentile(drawn[m], [10, 90])
        for name, median in medians.items():
            assert low <= median[m] <= high, f"{m}: {name}'s median {median[m]:.3f} outside [{low:.3f}, {high:.3f}]"


def test_quick_table_names_every_set(tmp_path, drive_root):
    out = tmp_path / "cameras.json"
    args = ["--quick", "--data-root", str(drive_root.parent), "--json", str(out)]
    result = run_benchmark("benchmarks.camera_statistics", *args, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "photographs" not in line]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == list(SETS)
    photographs = json.loads(out.read_text())["photographs"]
    assert {name: len(p) for name, p in photographs.items()} == dict.fromkeys(SETS, 3)
    assert all(set(p) == set(MEASURES) for set_ in photographs.values() for p in set_)


def test_a_missing_set_is_named(tmp_path):
    result = run_benchmark("benchmarks.camera_statistics", "--quick", "--data-root", str(tmp_path), cwd=REPO_ROOT)
    assert result.returncode == 1 and str(tmp_path / "DRIVE") in result.stderr
