"""`retina-seg-predict` end to end on real photographs, with a checkpoint from a real (tiny) training run."""

import csv
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from retina_seg.data.fov import detect_fov, fov_diameter
from retina_seg.data.io import read_image, read_mask
from retina_seg.evaluation.checkpoint_eval import evaluate
from retina_seg.inference.photographs import NO_FOV_FOUND
from retina_seg.inference.predictor import VesselPredictor
from retina_seg.inference.run import predict_files
from retina_seg.inference.settings import predict_settings
from retina_seg.records.checkpoint import CheckpointError
from retina_seg.records.run_folder import read_metrics
from tests.helpers.environment import REPO_ROOT
from tests.helpers.runs import compose, run_main
from tests.helpers.sweeps import file_mtimes

QUIET = ["progress_bar=false", "num_workers=0"]


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> Path:
    return tiny_checkpoint


def _settings(checkpoint: Path, inputs, output: Path, *overrides: str):
    listed = f"[{','.join(map(str, inputs))}]" if isinstance(inputs, list) else str(inputs)
    cfg = compose(
        [f"ckpt_path={checkpoint}", f"input={listed}", f"output={output}", *QUIET, *overrides], config_name="predict"
    )
    return predict_settings(cfg)


def _predict_cli(checkpoint: Path, inputs: str, output: Path, *overrides: str) -> subprocess.CompletedProcess:
    return run_main(
        "retina_seg.predict",
        f"ckpt_path={checkpoint}",
        f"input={inputs}",
        f"output={output}",
        f"hydra.run.dir={output / 'hydra'}",
        *overrides,
    )


def _size(path: str | Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_drive_test_images_give_masks_probabilities_overlays_and_scores(checkpoint, drive_root, tmp_path):
    images = drive_root / "test" / "images"
    truth = drive_root / "test" / "1st_manual"
    result = _predict_cli(
        checkpoint, f"'{images}/0[1-3]_test.tif'", tmp_path, f"masks={truth}", "num_workers=1", "batch_size=2"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "images/s" in result.stdout and "Overall IoU" in result.stdout
    summary = json.loads((tmp_path / "predictions.json").read_text())
    assert summary["predicted"] == 3 and summary["failed"] == [] and summary["images_per_s"] > 0
    assert summary["threshold"] == pytest.approx(read_metrics(checkpoint.parents[1])["threshold"])
    assert summary["threshold_source"] == "checkpoint"
    rows = {row["image"]: row for row in csv.DictReader((tmp_path / "scores.csv").open())}
    assert list(rows) == ["01_test", "02_test", "03_test", "overall"]
    pooled = {"TP": 0, "FP": 0, "FN": 0}
    for record in summary["images"]:
        assert record["plan"] == "whole" and record["fov"] == "detected"
        assert {_size(path) for path in record["outputs"].values()} == {(565, 584)}
        mask = np.asarray(Image.open(record["outputs"]["mask"])) == 255
        name = Path(record["input"]).stem
        vessels = read_mask(truth / f"{name.split('_')[0]}_manual1.gif")
        tp, fp, fn = (mask & vessels).sum(), (mask & ~vessels).sum(), (~mask & vessels).sum()
        assert float(rows[name]["IoU"]) == pytest.approx(tp / (tp + fp + fn), abs=1e-6)
        for key, value in zip(pooled, (tp, fp, fn)):
            pooled[key] += value
    assert float(rows["overall"]["IoU"]) == pytest.approx(pooled["TP"] / sum(pooled.values()), abs=1e-6)


def test_tiled_path_equals_whole_path_on_a_real_photograph(checkpoint, drive_root):
    predictor = VesselPredictor.from_checkpoint(checkpoint)
    image = read_image(drive_root / "test" / "images" / "03_test.tif")
    whole = predictor.predict(image, "whole")
    blended = predictor.predict(image, "tiles", tile_size=256, tile_overlap=96)
    abutting = predictor.predict(image, "tiles", tile_size=256, tile_overlap=0)
    assert blended.shape == whole.shape == (584, 565)
    assert np.abs(blended - whole).max() < 1e-4
    # The tolerance means something: tiles without overlap and blending show their seams well beyond it.
    assert np.abs(abutting - whole).max() > 1e-3


def test_resize_mode_and_threshold_override(checkpoint, drive_root, tmp_path):
    image_path = drive_root / "test" / "images" / "04_test.tif"
    summary = predict_files(
        _settings(
            checkpoint, image_path, tmp_path, "mode=resize", "resize.height=256", "resize.width=256", "threshold=0.56"
        )
    )
    record = summary["images"][0]
    assert (record["plan"], summary["threshold"], summary["threshold_source"]) == ("resize", 0.56, "override")
    probability = np.asarray(Image.open(record["outputs"]["probability"])) / 65535
    mask = np.asarray(Image.open(record["outputs"]["mask"])) == 255
    assert probability.shape == mask.shape == (584, 565)
    clear = np.abs(probability - 0.56) > 1e-4  # away from the 16-bit rounding of the threshold itself
    np.testing.assert_array_equal(mask[clear], probability[clear] >= 0.56)
    fov = read_mask(drive_root / "test" / "mask" / "04_test_mask.gif")
    assert (probability[~fov] == 0).mean() > 0.99  # outside the (detected) FOV predictions are zero


@pytest.mark.parametrize("shown", [True, False])
def test_the_progress_bar_counts_images_on_stderr_and_hiding_it_writes_nothing(
    shown, checkpoint, drive_root, tmp_path, capfd
):
    image_path = drive_root / "test" / "images" / "04_test.tif"
    small = ["mode=resize", "resize.height=64", "resize.width=64", f"progress_bar={str(shown).lower()}"]
    predict_files(_settings(checkpoint, image_path, tmp_path, *small))
    printed = capfd.readouterr()
    assert printed.out == ""
    if shown:
        assert "predicting" in printed.err and "1/1" in printed.err
    else:
        assert printed.err == ""


def test_a_checkpoint_from_before_the_training_scale_was_stored_still_works(checkpoint, drive_root, tmp_path, caplog):
    """No fov_diameter in it: predicted and evaluated at the photographs' own scale, with a warning that says
    how to give the scale; given it, the photograph is rescaled."""
    written_before = torch.load(checkpoint, map_location="cpu", weights_only=True)
    del written_before["retina_seg"]["fov_diameter"]
    old = tmp_path / "old.ckpt"
    torch.save(written_before, old)
    image = drive_root / "test" / "images" / "01_test.tif"
    with caplog.at_level(logging.WARNING):
        native = predict_files(_settings(old, image, tmp_path / "native"))
        record = evaluate(
            compose(
                [f"ckpt_path={old}", "data.source.n_test=2", "trainer.enable_progress_bar=false"],
                tmp_path / "eval",
                config_name="eval",
            ),
            tmp_path / "eval",
        )
    assert f"checkpoint {old} stores no training FOV diameter" in caplog.text
    assert native["scale_source"].startswith("none") and native["train_fov_diameter"] is None
    assert native["images"][0]["scale"] == 1.0 and native["images"][0]["network_size"] == [584, 565]
    assert record["scale"]["source"].startswith("none") and record["scale"]["factors"] == [1.0, 1.0]
    given = predict_files(_settings(old, image, tmp_path / "given", "scale.train_fov_diameter=270"))
    assert given["scale_source"] == "override" and given["train_fov_diameter"] == 270
    assert given["images"][0]["scale"] == pytest.approx(270 / fov_diameter(detect_fov(read_image(image))), abs=1e-6)


def test_a_crop_inside_the_fov_is_predicted_at_the_fallback_scale_with_a_warning(
    checkpoint, drive_root, tmp_path, caplog
):
    """No dark border, so no FOV: the whole crop is predicted, its diagonal taken as the FOV diameter, and said."""
    crop = tmp_path / "crop.png"
    Image.fromarray(read_image(drive_root / "test" / "images" / "01_test.tif")[150:450, 120:520]).save(crop)
    with caplog.at_level(logging.WARNING):
        summary = predict_files(_settings(checkpoint, crop, tmp_path / "out", "scale.train_fov_diameter=250"))
    [record] = summary["images"]
    assert record["fov"] == NO_FOV_FOUND and record["fov_diameter"] == pytest.approx(500.0)  # 300x400: 500
    assert record["scale"] == pytest.approx(0.5) and record["network_size"] == [150, 200]
    assert f"{crop}: no field of view found (no dark border)" in caplog.text
    assert "500 px, scale 0.500" in caplog.text
    assert (np.asarray(Image.open(record["outputs"]["probability"])) > 0).mean() > 0.5  # not zeroed as outside


def _mixed_folder(folder: Path, drive_root: Path, kaggle_root: Path) -> dict[str, tuple[int, int]]:
    """Real photographs in several formats and sizes, plus bad files: name -> expected (width, height)."""
    folder.mkdir()
    drive = Image.open(drive_root / "test" / "images" / "05_test.tif")
    drive.save(folder / "drive.tif")
    Image.open(kaggle_root / "test" / "image" / "0.png").save(folder / "kaggle.png")
    drive.resize((700, 650)).save(folder / "scan.jpg", quality=90)
    drive.convert("L").resize((300, 280)).save(folder / "grey.png")
    drive.resize((200, 190)).save(folder / "small.ppm")
    drive.convert("P").save(folder / "palette.gif")
    drive.resize((1300, 1000)).save(folder / "large.jpg", quality=90)
    (folder / "truncated.png").write_bytes((folder / "kaggle.png").read_bytes()[:3000])
    (folder / "fake.jpg").write_text("not a photograph")
    (folder / "notes.txt").write_text("a stray file")
    return {
        "drive": (565, 584),
        "kaggle": (512, 512),
        "scan": (700, 650),
        "grey": (300, 280),
        "small": (200, 190),
        "palette": (565, 584),
        "large": (1300, 1000),
    }


def test_a_folder_of_mixed_formats_and_sizes_with_bad_files(checkpoint, drive_root, kaggle_root, tmp_path):
    expected = _mixed_folder(tmp_path / "in", drive_root, kaggle_root)
    out = tmp_path / "out"
    result = _predict_cli(
        checkpoint, str(tmp_path / "in"), out, "whole_image_max_pixels=600000", "tile.size=384", "num_workers=1"
    )
    assert result.returncode == 1, result.stderr[-3000:]  # some inputs failed, the others were predicted
    assert "2 input(s) failed" in result.stderr
    assert "truncated.png" in result.stderr and "fake.jpg" in result.stderr
    summary = json.loads((out / "predictions.json").read_text())
    assert sorted(Path(f["input"]).name for f in summary["failed"]) == ["fake.jpg", "truncated.png"]
    assert [Path(p).name for p in summary["skipped"]] == ["notes.txt"]
    records = {Path(r["input"]).stem: r for r in summary["images"]}
    assert set(records) == set(expected)
    for name, size in expected.items():
        assert {_size(path) for path in records[name]["outputs"].values()} == {size}, name
    # mode=auto puts each at the training scale (64x64 synthetic photographs): the larger its FOV, the smaller
    # its factor; tiny after rescaling, every one is predicted whole.
    assert records["large"]["scale"] < records["scan"]["scale"] < records["drive"]["scale"] < 1
    assert {record["plan"] for record in records.values()} == {"whole"}
    for record in records.values():
        assert record["network_size"] == [
            round(record["height"] * record["scale"]),
            round(record["width"] * record["scale"]),
        ]
    assert np.asarray(Image.open(records["grey"]["outputs"]["overlay"])).shape == (280, 300, 3)


def test_by_default_the_predictions_go_into_the_commands_own_folder(checkpoint, drive_root, tmp_path):
    """No output=: Hydra's run folder, which holds the command's lock and log while it predicts, is the output."""
    image = drive_root / "test" / "images" / "01_test.tif"
    result = run_main("retina_seg.predict", f"ckpt_path={checkpoint}", f"input={image}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "01_test_mask.png").exists() and (tmp_path / "predictions.json").exists()


def test_unusable_input_or_checkpoint_stops_with_exit_code_2(checkpoint, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _predict_cli(checkpoint, str(empty), tmp_path / "a")
    assert result.returncode == 2 and f"input folder {empty}: no image files" in result.stderr
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(checkpoint.read_bytes()[:5000])
    result = _predict_cli(corrupt, str(empty), tmp_path / "b")
    assert result.returncode == 2 and f"checkpoint {corrupt}: corrupt" in result.stderr
    assert "Traceback" not in result.stderr


SMALL = ["mode=resize", "resize.height=64", "resize.width=64", *QUIET]


def _prediction_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != "predict.log")


def _outputs_mtimes(folder: Path) -> dict[str, int]:
    """The output folder's files, not those of the command's own Hydra folder (_predict_cli puts it inside)."""
    return {name: mtime for name, mtime in file_mtimes(folder).items() if not name.startswith("hydra/")}


def test_predictions_over_predictions_are_refused_unless_overwrite_clears_the_earlier_ones(
    checkpoint, drive_root, tmp_path
):
    """A second prediction into a folder that holds one is refused and changes nothing; with overwrite=true the
    earlier prediction's files go (also those of one killed before its predictions.json), others stay."""
    images, out = drive_root / "test" / "images", tmp_path / "out"
    first = _predict_cli(checkpoint, f"'{images}/0[12]_test.tif'", out, *SMALL, "threshold=0.3")
    assert first.returncode == 0, first.stderr[-3000:]
    before = _outputs_mtimes(out)
    refused = _predict_cli(checkpoint, str(images / "03_test.tif"), out, *SMALL, "threshold=0.7")
    assert refused.returncode == 2, refused.stderr[-3000:]
    message = refused.stderr.strip().splitlines()
    assert len(message) == 1 and f"output {out}: not empty" in message[0] and "overwrite=true" in message[0]
    assert _outputs_mtimes(out) == before and len(before) == 7
    (out / "04_test_mask.png").write_bytes(b"left by a killed prediction")
    (out / "notes.txt").write_text("the user's")
    again = _predict_cli(checkpoint, str(images / "03_test.tif"), out, *SMALL, "threshold=0.7", "overwrite=true")
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["threshold"] == 0.7 and summary["predicted"] == 1
    listed = sorted(Path(path).name for path in summary["images"][0]["outputs"].values())
    assert _prediction_files(out) == sorted([*listed, "notes.txt", "predictions.json"])
    assert (out / "notes.txt").read_text() == "the user's"


def test_inputs_that_all_fail_exit_2_as_nothing_could_run(checkpoint, drive_root, tmp_path):
    missing = tmp_path / "missing.png"
    result = _predict_cli(checkpoint, str(missing), tmp_path / "a", *SMALL)
    assert result.returncode == 2, result.stderr[-3000:]
    assert str(missing) in result.stderr and "Traceback" not in result.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "fake.jpg").write_text("not a photograph")
    (broken / "truncated.tif").write_bytes((drive_root / "test" / "images" / "01_test.tif").read_bytes()[:3000])
    result = _predict_cli(checkpoint, str(broken), tmp_path / "b", *SMALL)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "2 input(s) failed" in result.stderr and "Traceback" not in result.stderr
    # One usable input among them: the work ran and some of it failed.
    (broken / "good.tif").write_bytes((drive_root / "test" / "images" / "01_test.tif").read_bytes())
    result = _predict_cli(checkpoint, str(broken), tmp_path / "c", *SMALL)
    assert result.returncode == 1 and "2 input(s) failed" in result.stderr, result.stderr[-3000:]


class Payload:
    """Stands for any pickled object a checkpoint might smuggle in."""


def _bad_checkpoint(kind: str, checkpoint: Path, path: Path) -> Path:
    good = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if kind == "truncated":
        path.write_bytes(checkpoint.read_bytes()[:4096])
    elif kind == "pickled object":
        torch.save({**good, "extra": Payload()}, path)
    elif kind == "another model":
        torch.save({"state_dict": {"encoder.weight": torch.zeros(3)}, "epoch": 3}, path)
    elif kind == "weights of another size":
        torch.save(
            {**good, "retina_seg": {**good["retina_seg"], "model": {**good["retina_seg"]["model"], "base_width": 8}}},
            path,
        )
    elif kind == "foreign target":
        torch.save(
            {**good, "retina_seg": {**good["retina_seg"], "model": {"_target_": "os.system", "command": "true"}}}, path
        )
    else:
        path.write_text("just text")
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("truncated", "corrupt or not a PyTorch checkpoint"),
        ("pickled object", "refused, it holds pickled objects"),
        ("another model", "not a retina-seg checkpoint"),
        ("weights of another size", "weights do not fit its model"),
        ("foreign target", "model 'os.system' is not one of"),
        ("text", "corrupt or not a PyTorch checkpoint"),
    ],
)
def test_bad_checkpoints_are_refused_naming_the_file(checkpoint, tmp_path, kind, message):
    path = _bad_checkpoint(kind, checkpoint, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=message) as error:
        VesselPredictor.from_checkpoint(path)
    assert str(path) in str(error.value)


# Peak memory of one process predicting a large photograph, after a warm-up on a small one with the same settings
# (so the network, the tile batches and the libraries' own buffers are already counted in the baseline).
PEAK_MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from PIL import Image
    from retina_seg.data.synthetic import synthesize_fundus
    from retina_seg.inference.run import predict_files
    from tests.helpers.runs import compose
    from retina_seg.inference.settings import predict_settings

    checkpoint, folder, overrides = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    small, _, _ = synthesize_fundus(0, 500, 750)
    Image.fromarray(small).save(folder / "warm.png")
    Image.fromarray(small).resize((3504, 2336), Image.BILINEAR).save(folder / "large.png")

    def predict(name):
        cfg = compose([f"ckpt_path={checkpoint}", f"input={folder / name}", f"output={folder / name}.out",
                       "progress_bar=false", "num_workers=0", "batch_size=2", *overrides], config_name="predict")
        return predict_files(predict_settings(cfg))

    predict("warm.png")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    summary = predict("large.png")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"extra_peak_bytes": (peak - baseline) * 1024, "summary": summary}))
""")


@pytest.mark.slow
def test_a_large_photograph_is_rescaled_then_tiled_in_bounded_memory(checkpoint, tmp_path):
    """An HRF-sized photograph (3504x2336) whose FOV (about 2200 px wide) is a little larger than the training
    scale given here: auto mode shrinks it by about 0.9, and the result is still large enough to go by tiles."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_MEMORY_PROBE,
            str(checkpoint),
            str(tmp_path),
            "mode=auto",
            "scale.train_fov_diameter=2000",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    record = report["summary"]["images"][0]
    assert report["summary"]["scale_source"] == "override"
    assert record["plan"] == "tiles" and {_size(p) for p in record["outputs"].values()} == {(3504, 2336)}
    assert record["scale"] == pytest.approx(2000 / record["fov_diameter"], abs=1e-6) and 0.85 < record["scale"] < 0.95
    image_bytes = 3504 * 2336 * 3
    # Tiles need, per photograph: the decoded image (3 bytes/pixel, briefly more while PIL converts it), the FOV
    # detection's label map (4), the rescaled image (3 x 0.8), the blended probability map at the network's and at
    # the input's size (4 x 0.8 + 4), its 16-bit copy (2), the mask (1) and the overlay (3). Whole-image inference
    # of even this 4-channel-wide network measured 43x the image's bytes (every level's activations at full size).
    # 25x separates the two with room for allocator slack.
    assert report["extra_peak_bytes"] < 25 * image_bytes, report["extra_peak_bytes"] / image_bytes
