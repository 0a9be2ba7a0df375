"""Scale-aware prediction and evaluation on real photographs: DRIVE's test photographs stored at other
resolutions, as another camera would give them, scored against their manual masks resized alike."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retina_seg.data.io import read_mask
from retina_seg.evaluation.checkpoint_eval import evaluate
from retina_seg.inference.run import predict_files
from retina_seg.inference.settings import predict_settings
from tests.helpers.runs import compose

# A DRIVE model trained for two minutes, photographs at four scales.
pytestmark = [pytest.mark.real_data, pytest.mark.slow]

PHOTOGRAPHS = [f"{number:02d}" for number in range(1, 6)]  # DRIVE test 01-05
FACTORS = (2.0, 3.0, 0.75)
# How close a rescaled photograph's score must come to the native one's (issue 16's 0.02), and how far a
# photograph predicted at the wrong scale falls. The brief model trains in fp32 (bf16 had moved its 3x gap from
# 0.014 to 0.021 between runs); two fp32 trainings on an AVX2-only AMD EPYC (2026-12-03) left gaps of
# 0.012-0.015 at 2x, 3x and 0.75x, with native IoU 0.62 and 0.64.
SAME_SCORE = 0.02
# Factors where prediction at the photographs' own scale falls clearly below native. At 0.75x the fall is small
# and varies (0.015 with bf16 on 2026-12-02; 0.023 and 0.024 in the fp32 runs above): the test shows it, without
# asserting a gap.
WRONG_SCALE_HURTS = (2.0, 3.0)


def _resized(image: Image.Image, factor: float, resample: int) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), resample)


def _binary(mask: np.ndarray, factor: float) -> Image.Image:
    """A manual mask resized as its photograph: bilinear on 0/255, then above half."""
    grey = _resized(Image.fromarray(mask.astype(np.uint8) * 255), factor, Image.BILINEAR)
    return Image.fromarray((np.asarray(grey) > 127).astype(np.uint8) * 255)


def write_resized_drive(drive_root: Path, folder: Path, factor: float, layout: str = "flat") -> Path:
    """DRIVE test photographs 01-05 and their manual masks scaled by `factor` (bicubic photographs). "flat":
    images/NN_test.png and masks/NN_manual1.png; "hrf": the HRF layout (JPEG photographs, TIFF masks and FOV)."""
    test = drive_root / "test"
    for number in PHOTOGRAPHS:
        photo = _resized(Image.open(test / "images" / f"{number}_test.tif").convert("RGB"), factor, Image.BICUBIC)
        truth = _binary(read_mask(test / "1st_manual" / f"{number}_manual1.gif"), factor)
        if layout == "flat":
            paths = {
                "image": folder / "images" / f"{number}_test.png",
                "truth": folder / "masks" / f"{number}_manual1.png",
            }
        else:
            paths = {
                "image": folder / "images" / f"{number}_h.jpg",
                "truth": folder / "manual1" / f"{number}_h.tif",
                "fov": folder / "mask" / f"{number}_h_mask.tif",
            }
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        photo.save(paths["image"], quality=95)  # JPEG quality; PNG ignores it
        truth.save(paths["truth"])
        if "fov" in paths:
            _binary(read_mask(test / "mask" / f"{number}_test_mask.gif"), factor).save(paths["fov"])
    return folder


def predicted(checkpoint: Path, folder: Path, out: Path, *overrides: str) -> dict:
    """retina-seg-predict's summary over the folder's photographs, scored against its masks."""
    cfg = compose(
        [
            f"ckpt_path={checkpoint}",
            f"input={folder / 'images'}",
            f"masks={folder / 'masks'}",
            f"output={out}",
            "progress_bar=false",
            "num_workers=0",
            *overrides,
        ],
        config_name="predict",
    )
    return predict_files(predict_settings(cfg))


@pytest.fixture(scope="module")
def native(drive_checkpoint, drive_root, tmp_path_factory) -> dict:
    folder = write_resized_drive(drive_root, tmp_path_factory.mktemp("native"), 1.0)
    return predicted(drive_checkpoint, folder, folder / "out")


def test_the_model_segments_drive_and_native_photographs_are_not_rescaled(native, drive_checkpoint):
    assert native["overall"]["IoU"] > 0.45, native["overall"]  # the brief training works: a real vessel map
    assert native["scale_source"] == "checkpoint" and 530 < native["train_fov_diameter"] < 545
    assert {record["scale"] for record in native["images"]} == {1.0}  # within the tolerance of the training scale


@pytest.mark.parametrize("factor", FACTORS)
def test_rescaled_photographs_score_as_native_only_with_scale_awareness(
    factor, native, drive_checkpoint, drive_root, tmp_path
):
    folder = write_resized_drive(drive_root, tmp_path, factor)
    aware = predicted(drive_checkpoint, folder, tmp_path / "aware")  # the default, mode=auto
    unaware = predicted(drive_checkpoint, folder, tmp_path / "unaware", "mode=tiles")  # at the photographs' scale
    scores = {
        "native": native["overall"]["IoU"],
        "aware": aware["overall"]["IoU"],
        "unaware": unaware["overall"]["IoU"],
    }
    print(f"\nDRIVE test 01-05 at {factor}x: IoU {json.dumps({k: round(v, 4) for k, v in scores.items()})}")
    for record in aware["images"]:
        assert record["scale"] == pytest.approx(1 / factor, rel=0.03)
        assert record["network_size"] == [
            round(record["height"] * record["scale"]),
            round(record["width"] * record["scale"]),
        ]
    assert {record["scale"] for record in unaware["images"]} == {1.0}
    assert abs(scores["aware"] - scores["native"]) <= SAME_SCORE, scores
    if factor in WRONG_SCALE_HURTS:
        assert scores["native"] - scores["unaware"] > SAME_SCORE, scores


def test_eval_of_a_higher_resolution_data_set_rescales_it(drive_checkpoint, drive_root, tmp_path):
    """retina-seg-eval on DRIVE photographs upsampled 2x and stored in the HRF layout (JPEG photographs, TIFF
    masks): at the training scale it scores as DRIVE itself; at the photographs' own scale it does not."""
    hrf = write_resized_drive(drive_root, tmp_path / "hrf", 2.0, layout="hrf")
    common = [
        f"ckpt_path={drive_checkpoint}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    limited = ["data=drive", f"data.root={drive_root}", f"data.source.limit_test={len(PHOTOGRAPHS)}"]
    records = {}
    for name, data in (
        ("native", limited),
        ("aware", ["data=hrf", f"data.root={hrf}", "data.source.split=all"]),
        ("unaware", ["data=hrf", f"data.root={hrf}", "data.source.split=all", "scale_aware=false"]),
    ):
        out = tmp_path / name
        records[name] = evaluate(compose([*common, *data], out, config_name="eval"), out)
        assert json.loads((out / "metrics.json").read_text())["test_IoU"] == records[name]["test_IoU"]
    scores = {name: record["test_IoU"] for name, record in records.items()}
    print(f"\nretina-seg-eval, DRIVE test 01-05 at 2x in the HRF layout: IoU {scores}")
    assert records["aware"]["scale"]["factors"] == pytest.approx([0.5] * len(PHOTOGRAPHS), rel=0.03)
    assert records["unaware"]["scale"]["factors"] == [1.0] * len(PHOTOGRAPHS)
    assert abs(scores["aware"] - scores["native"]) <= SAME_SCORE, scores
    assert abs(scores["unaware"] - scores["native"]) > SAME_SCORE, scores
