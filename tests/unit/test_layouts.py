"""Finding sample files in the Kaggle and DRIVE layouts, and the errors for broken layouts."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retina_seg.data.errors import DataError
from retina_seg.data.layouts import Sample, drive_samples, kaggle_samples

TINY = np.zeros((4, 4), dtype=np.uint8)


def touch_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(TINY).save(path)
    return path


def kaggle_tree(root: Path, split: str = "train", images=range(12), masks=range(12)) -> Path:
    for part in ("image", "mask"):
        (root / split / part).mkdir(parents=True, exist_ok=True)
    for stem in images:
        touch_image(root / split / "image" / f"{stem}.png")
    for stem in masks:
        touch_image(root / split / "mask" / f"{stem}.png")
    return root


def drive_tree(root: Path, kind: str, numbers) -> Path:
    names = {"images": f"{{}}_{kind}.tif", "1st_manual": "{}_manual1.gif", "mask": f"{{}}_{kind}_mask.gif"}
    for role in names:
        (root / kind / role).mkdir(parents=True, exist_ok=True)
        for number in numbers:
            touch_image(root / kind / role / names[role].format(f"{number:02d}"))
    return root


def test_kaggle_pairs_sorted_numerically_with_photograph_groups(tmp_path):
    samples = kaggle_samples(kaggle_tree(tmp_path), "train")
    assert [s.image.name for s in samples] == [f"{i}.png" for i in range(12)]
    assert all(s.mask == tmp_path / "train" / "mask" / s.image.name for s in samples)
    assert [s.group for s in samples] == ["0"] * 4 + ["1"] * 4 + ["2"] * 4
    assert all(s.fov is None for s in samples)


def test_kaggle_test_split_groups_by_stem(tmp_path):
    samples = kaggle_samples(kaggle_tree(tmp_path, "test", range(6), range(6)), "test")
    assert [s.group for s in samples] == ["0", "1", "2", "3", "4", "5"]


def test_kaggle_accepts_data_top_folder(tmp_path):
    kaggle_tree(tmp_path / "Data", "test", range(3), range(3))
    samples = kaggle_samples(tmp_path, "test")
    assert [s.image for s in samples] == [tmp_path / "Data" / "test" / "image" / f"{i}.png" for i in range(3)]


def test_kaggle_ignores_other_files(tmp_path):
    kaggle_tree(tmp_path, "test", range(2), range(2))
    (tmp_path / "test" / "image" / "Thumbs.db").write_text("x")
    assert len(kaggle_samples(tmp_path, "test")) == 2


def test_unknown_split():
    with pytest.raises(ValueError, match="train, test"):
        kaggle_samples("anywhere", "val")


@pytest.mark.parametrize("finder", [kaggle_samples, drive_samples])
def test_missing_root(tmp_path, finder):
    with pytest.raises(DataError, match="not found") as error:
        finder(tmp_path / "nowhere", "train")
    assert str(tmp_path / "nowhere") in str(error.value)


def test_kaggle_missing_split_folder(tmp_path):
    kaggle_tree(tmp_path, "train")
    with pytest.raises(DataError, match="folder not found") as error:
        kaggle_samples(tmp_path, "test")
    assert str(tmp_path / "test") in str(error.value)


def test_kaggle_missing_mask_folder(tmp_path):
    kaggle_tree(tmp_path, "train", range(2), [])
    (tmp_path / "train" / "mask").rmdir()
    with pytest.raises(DataError) as error:
        kaggle_samples(tmp_path, "train")
    assert f"{tmp_path / 'train' / 'mask'}: folder not found" in str(error.value)


def test_kaggle_image_without_mask_and_mask_without_image_listed_together(tmp_path):
    kaggle_tree(tmp_path, "train", images=[0, 1, 2, 3, 4], masks=[0, 1, 2, 3, 7])
    with pytest.raises(DataError, match="2 problem") as error:
        kaggle_samples(tmp_path, "train")
    message = str(error.value)
    assert f"{tmp_path / 'train' / 'image' / '4.png'}: no mask" in message
    assert f"{tmp_path / 'train' / 'mask' / '7.png'}: no image" in message


def test_kaggle_empty_split(tmp_path):
    kaggle_tree(tmp_path, "train", [], [])
    with pytest.raises(DataError, match="empty split") as error:
        kaggle_samples(tmp_path, "train")
    assert str(tmp_path / "train") in str(error.value)


def test_kaggle_train_name_must_be_a_number(tmp_path):
    kaggle_tree(tmp_path, "train", ["0", "scan"], ["0", "scan"])
    with pytest.raises(DataError, match="not a number") as error:
        kaggle_samples(tmp_path, "train")
    assert str(tmp_path / "train" / "image" / "scan.png") in str(error.value)


def test_drive_triples(tmp_path):
    drive_tree(tmp_path, "training", range(21, 25))
    samples = drive_samples(tmp_path, "train")
    assert samples[0] == Sample(
        tmp_path / "training" / "images" / "21_training.tif",
        tmp_path / "training" / "1st_manual" / "21_manual1.gif",
        tmp_path / "training" / "mask" / "21_training_mask.gif",
        "21",
    )
    assert [s.group for s in samples] == ["21", "22", "23", "24"]


def test_drive_test_split(tmp_path):
    drive_tree(tmp_path, "test", range(1, 4))
    samples = drive_samples(tmp_path, "test")
    assert [s.image.name for s in samples] == ["01_test.tif", "02_test.tif", "03_test.tif"]
    assert samples[2].fov.name == "03_test_mask.gif"


def test_drive_missing_manual_and_fov(tmp_path):
    drive_tree(tmp_path, "test", range(1, 4))
    (tmp_path / "test" / "1st_manual" / "02_manual1.gif").unlink()
    (tmp_path / "test" / "mask" / "03_test_mask.gif").unlink()
    with pytest.raises(DataError, match="2 problem") as error:
        drive_samples(tmp_path, "test")
    message = str(error.value)
    assert "02_test.tif" in message and str(tmp_path / "test" / "1st_manual" / "02_manual1.gif") in message
    assert "03_test.tif" in message and str(tmp_path / "test" / "mask" / "03_test_mask.gif") in message


def test_drive_manual_without_image(tmp_path):
    drive_tree(tmp_path, "test", range(1, 3))
    touch_image(tmp_path / "test" / "1st_manual" / "09_manual1.gif")
    with pytest.raises(DataError) as error:
        drive_samples(tmp_path, "test")
    assert f"{tmp_path / 'test' / '1st_manual' / '09_manual1.gif'}: no image" in str(error.value)


def test_drive_missing_split_folder(tmp_path):
    drive_tree(tmp_path, "training", range(21, 23))
    with pytest.raises(DataError, match="folder not found") as error:
        drive_samples(tmp_path, "test")
    assert str(tmp_path / "test") in str(error.value)


def test_drive_empty_split(tmp_path):
    drive_tree(tmp_path, "test", [])
    with pytest.raises(DataError, match="empty split") as error:
        drive_samples(tmp_path, "test")
    assert str(tmp_path / "test") in str(error.value)
