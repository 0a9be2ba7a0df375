"""Finding sample files in the Kaggle, DRIVE, STARE, CHASE_DB1 and HRF layouts, and the errors for broken layouts
(CHASE_DB1 and HRF are not in ../shared: tests/helpers/dataset_trees.py generates their layouts from their
published file naming)."""

import numpy as np
import pytest

from retina_seg.data.errors import DataError
from retina_seg.data.layouts import Sample, chase_db1_samples, drive_samples, hrf_samples, kaggle_samples, stare_samples
from retina_seg.data.loading import load_samples
from retina_seg.data.sources import ChaseDb1Source
from tests.helpers.dataset_trees import chase_db1_tree, drive_tree, hrf_tree, kaggle_tree, write_image


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


@pytest.mark.parametrize("finder", [kaggle_samples, drive_samples, stare_samples, chase_db1_samples, hrf_samples])
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
    write_image(tmp_path / "test" / "1st_manual" / "09_manual1.gif")
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


def test_drive_second_observer_where_its_folder_exists(tmp_path):
    drive_tree(tmp_path, "test", range(1, 3))
    for number in (1, 2):
        write_image(tmp_path / "test" / "2nd_manual" / f"{number:02d}_manual2.gif")
    samples = drive_samples(tmp_path, "test")
    assert [s.second_mask.name for s in samples] == ["01_manual2.gif", "02_manual2.gif"]
    (tmp_path / "test" / "2nd_manual" / "02_manual2.gif").unlink()
    with pytest.raises(DataError) as error:  # once present, the second observer must cover every image
        drive_samples(tmp_path, "test")
    expected = tmp_path / "test" / "2nd_manual" / "02_manual2.gif"
    assert f"no second-observer mask (expected {expected})" in str(error.value)


def test_chase_db1_children_11_to_14_test_both_eyes_one_group(tmp_path):
    chase_db1_tree(tmp_path, [1, 2, 10, 11, 14])
    train, test = chase_db1_samples(tmp_path, "train"), chase_db1_samples(tmp_path, "test")
    assert [s.image.name for s in train] == [f"Image_{k}.jpg" for k in ("01L", "01R", "02L", "02R", "10L", "10R")]
    assert [s.image.name for s in test] == [f"Image_{k}.jpg" for k in ("11L", "11R", "14L", "14R")]
    assert [s.group for s in train] == ["01", "01", "02", "02", "10", "10"]
    assert train[0] == Sample(
        tmp_path / "Image_01L.jpg", tmp_path / "Image_01L_1stHO.png", None, "01", tmp_path / "Image_01L_2ndHO.png"
    )


def test_chase_db1_grouped_split_keeps_a_childs_eyes_together(tmp_path):
    chase_db1_tree(tmp_path, [1, 2, 3, 4, 11])
    for seed in range(4):
        splits = ChaseDb1Source(tmp_path, n_val=2, split_seed=seed).load()
        assert len(splits.val) == 2 and len({s.group for s in splits.val}) == 1
        assert {s.group for s in splits.train}.isdisjoint({s.group for s in splits.val})
    everything = ChaseDb1Source(tmp_path, split="all").load()
    assert (len(everything.train), len(everything.val), len(everything.test)) == (0, 0, 10)


def test_chase_db1_missing_first_observer_named_with_the_file_it_expects(tmp_path):
    chase_db1_tree(tmp_path, [1, 11], second=False)
    (tmp_path / "Image_11R_1stHO.png").unlink()
    write_image(tmp_path / "Image_03L_1stHO.png")
    with pytest.raises(DataError, match="2 problem") as error:
        chase_db1_samples(tmp_path, "train")  # checked whatever the split
    message = str(error.value)
    assert f"{tmp_path / 'Image_11R.jpg'}: no mask (expected {tmp_path / 'Image_11R_1stHO.png'})" in message
    assert f"{tmp_path / 'Image_03L_1stHO.png'}: no image (expected {tmp_path / 'Image_03L.jpg'})" in message


def test_chase_db1_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("no photographs")
    with pytest.raises(DataError, match="empty split, no CHASE_DB1 files") as error:
        chase_db1_samples(tmp_path, "test")
    assert "Image_NN.jpg" in str(error.value)


def test_hrf_triples_any_case_extension_and_split(tmp_path):
    hrf_tree(tmp_path, [1, 5, 6, 15])
    train, test = hrf_samples(tmp_path, "train"), hrf_samples(tmp_path, "test")
    assert [s.image.name for s in train] == ["01_dr.jpg", "01_g.JPG", "01_h.jpg", "05_dr.jpg", "05_g.JPG", "05_h.jpg"]
    assert [s.group for s in test] == ["06_dr", "06_g", "06_h", "15_dr", "15_g", "15_h"]
    assert test[0] == Sample(
        tmp_path / "images" / "06_dr.jpg",
        tmp_path / "manual1" / "06_dr.tif",
        tmp_path / "mask" / "06_dr_mask.tif",
        "06_dr",
    )


def test_hrf_missing_fov_folder_and_mask(tmp_path):
    hrf_tree(tmp_path, [1])
    (tmp_path / "manual1" / "01_h.tif").unlink()
    with pytest.raises(DataError) as error:
        hrf_samples(tmp_path, "test")
    present = f"{tmp_path / 'images' / '01_h.jpg'}, {tmp_path / 'mask' / '01_h_mask.tif'}"
    assert f"{present}: no mask (expected {tmp_path / 'manual1' / '01_h.tif'})" in str(error.value)
    for path in (tmp_path / "mask").iterdir():
        path.unlink()
    (tmp_path / "mask").rmdir()
    with pytest.raises(DataError) as error:
        hrf_samples(tmp_path, "test")
    assert f"{tmp_path / 'mask'}: folder not found" in str(error.value)


def test_stare_second_observer_missing_named(tmp_path):
    for number in (1, 2, 44, 77):
        write_image(tmp_path / "images" / f"im{number:04d}.ppm")
        write_image(tmp_path / "labels-ah" / f"im{number:04d}.ah.ppm")
        if number != 44:
            write_image(tmp_path / "labels-vk" / f"im{number:04d}.vk.ppm")
    with pytest.raises(DataError) as error:
        stare_samples(tmp_path, "train")
    assert f"{tmp_path / 'labels-vk' / 'im0044.vk.ppm'}" in str(error.value)
    write_image(tmp_path / "labels-vk" / "im0044.vk.ppm")
    assert [s.group for s in stare_samples(tmp_path, "test")] == ["0044", "0077"]


def test_chase_db1_second_observer_of_another_size_is_named_on_loading(tmp_path):
    chase_db1_tree(tmp_path, [1])
    write_image(tmp_path / "Image_01R_2ndHO.png", np.zeros((5, 6), dtype=np.uint8))
    with pytest.raises(DataError, match="1 problem") as error:
        load_samples(chase_db1_samples(tmp_path, "train"), detect_missing_fov=True)
    assert f"{tmp_path / 'Image_01R_2ndHO.png'}: second-observer mask is 6x5 (WxH) but its image" in str(error.value)
