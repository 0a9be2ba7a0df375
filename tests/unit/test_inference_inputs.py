"""Which files get predicted, what their outputs are called, and which masks belong to them."""

from pathlib import Path

import pytest

from retina_seg.data.errors import DataError
from retina_seg.inference.inputs import NameIndex, output_names, resolve_inputs


def _touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in names]
    for path in paths:
        path.write_bytes(b"x")
    return paths


def test_a_folder_gives_its_images_and_skips_other_files(tmp_path):
    _touch(tmp_path, "b.png", "a.TIF", "c.jpeg", "notes.txt", ".hidden.png")
    found = resolve_inputs(str(tmp_path))
    assert [p.name for p in found.images] == ["a.TIF", "b.png", "c.jpeg"]
    assert [p.name for p in found.skipped] == ["notes.txt"]


def test_a_glob_and_files_combine_without_duplicates(tmp_path):
    _touch(tmp_path / "x", "1.png", "2.png", "3.gif")
    found = resolve_inputs([str(tmp_path / "x" / "*.png"), str(tmp_path / "x" / "1.png"), str(tmp_path / "x")])
    assert [p.name for p in found.images] == ["1.png", "2.png", "3.gif"]


def test_a_named_file_is_kept_whatever_its_name_so_that_it_fails_on_its_own(tmp_path):
    found = resolve_inputs([str(tmp_path / "missing.png"), *map(str, _touch(tmp_path, "data.csv"))])
    assert [p.name for p in found.images] == ["missing.png", "data.csv"]


@pytest.mark.parametrize("names, message", [((), "no image files"), (("a.txt",), "only non-image files: a.txt")])
def test_a_folder_without_images_is_an_error_naming_it(tmp_path, names, message):
    folder = tmp_path / "empty"
    folder.mkdir()
    _touch(folder, *names)
    with pytest.raises(DataError, match=message) as error:
        resolve_inputs(str(folder))
    assert str(folder) in str(error.value)


def test_a_glob_matching_nothing_is_an_error_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"glob .*\*\.png"):
        resolve_inputs(str(tmp_path / "*.png"))


def test_output_names_use_stems_and_stay_unique():
    paths = [Path("a/x.png"), Path("a/x.jpg"), Path("b/x.png"), Path("a/y.tif")]
    assert output_names(paths) == {
        Path("a/x.png"): "x_png",
        Path("a/x.jpg"): "x_jpg",
        Path("b/x.png"): "x_png_2",
        Path("a/y.tif"): "y",
    }


def test_masks_are_found_by_stem_or_by_drive_style_leading_id(tmp_path):
    manual = _touch(tmp_path / "manual", "01_manual1.gif", "02_manual1.gif", "7.png")
    index = NameIndex(tmp_path / "manual", "ground-truth mask")
    assert index.find(Path("images/01_test.tif")) == manual[0]
    assert index.find(Path("images/7.png")) == manual[2]
    with pytest.raises(DataError, match=r"03_test.tif: no ground-truth mask file in .* named 03_test\.\* or 03_\*"):
        index.find(Path("images/03_test.tif"))


def test_two_candidate_masks_are_an_error_naming_both(tmp_path):
    _touch(tmp_path / "m", "01_a.gif", "01_b.gif")
    with pytest.raises(DataError, match="01_a.gif, 01_b.gif"):
        NameIndex(tmp_path / "m", "FOV mask").find(Path("01_test.tif"))


def test_a_mask_folder_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(DataError, match="FOV mask folder .*nowhere: not a folder"):
        NameIndex(tmp_path / "nowhere", "FOV mask")
