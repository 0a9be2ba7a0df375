"""Find image/mask(/FOV) file triples in the supported on-disk layouts, reporting all problems at once."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from retina_seg.data.errors import DataError

SPLITS = ("train", "test")
KAGGLE_COPIES = 4  # Kaggle train stores each photograph 4 times: original, h-flip, v-flip, rotation
SECOND_OBSERVER = "second-observer mask"  # the role's name in messages


@dataclass(frozen=True)
class Sample:
    """One image on disk; `group` names the photograph (or the subject) so that copies of one photograph, or
    two eyes of one person, never straddle train and val. `second_mask`: a second observer's vessel mask."""

    image: Path
    mask: Path
    fov: Path | None = None
    group: str = ""
    second_mask: Path | None = None


def _natural_key(key: str) -> tuple[int, int, str]:
    """Numeric names in numeric order (2 before 10), others after them by name."""
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def _raise_if(problems: list[str], what: str) -> None:
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise DataError(f"{len(problems)} problem(s) in {what}:\n{listing}")


def _check_folders(root: Path, split: str, split_dir: Path, subfolders: list[Path], what: str) -> None:
    """The split must be known and its folders present; report the split folder alone when it is missing."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    if not root.is_dir():
        raise DataError(f"{root}: data root {'is a file, not a folder' if root.exists() else 'not found'}")
    folders = [split_dir] if not split_dir.is_dir() else subfolders
    _raise_if([problem for folder in folders for problem in _folder_problem(folder)], what)


def _folder_problem(folder: Path) -> list[str]:
    """Why ``folder`` cannot be listed (missing, a file, permission denied), or nothing."""
    try:
        with os.scandir(folder):
            return []
    except FileNotFoundError:
        return [f"{folder}: folder not found"]
    except NotADirectoryError:
        return [f"{folder}: is a file, not a folder"]
    except PermissionError:
        return [f"{folder}: permission denied (cannot list its files)"]


def _unpaired(found: dict[str, dict[str, Path]], expected: dict[str, Callable[[str], Path]]) -> list[str]:
    """One problem per missing partner file, naming the file that exists and the path that does not."""
    problems = []
    for key in sorted(set().union(*found.values()), key=_natural_key):
        present = ", ".join(str(files[key]) for files in found.values() if key in files)
        missing = [role for role, files in found.items() if key not in files]
        problems += [f"{present}: no {role} (expected {expected[role](key)})" for role in missing]
    return problems


def _kaggle_root(root: Path) -> Path:
    """The Kaggle archive unpacks into `Data/`; accept the folder above it too."""
    if not any((root / split).is_dir() for split in SPLITS) and (root / "Data").is_dir():
        return root / "Data"
    return root


def _by_stem(folder: Path) -> dict[str, Path]:
    return {path.stem: path for path in folder.glob("*.png") if path.is_file()}


def _kaggle_group(split: str, stem: str) -> str:
    return str(int(stem) // KAGGLE_COPIES) if split == "train" else stem


def kaggle_samples(root: str | Path, split: str) -> list[Sample]:
    """Samples of `<root>/{train,test}/{image,mask}/N.png` (the Kaggle "Retina Blood Vessel" set)."""
    root = Path(root)
    what = f"Kaggle layout at {root}"
    split_dir = _kaggle_root(root) / split
    folders = {"image": split_dir / "image", "mask": split_dir / "mask"}
    _check_folders(root, split, split_dir, list(folders.values()), what)
    found = {role: _by_stem(folder) for role, folder in folders.items()}
    if not any(found.values()):
        raise DataError(f"{split_dir}: empty split, no *.png files in {folders['image']} or {folders['mask']}")
    expected = {role: (lambda stem, folder=folder: folder / f"{stem}.png") for role, folder in folders.items()}
    problems = _unpaired(found, expected)
    if split == "train":
        unnumbered = [path for stem, path in found["image"].items() if not stem.isdigit()]
        problems += [f"{path}: name is not a number, so its photograph group is unknown" for path in unnumbered]
    _raise_if(problems, what)
    stems = sorted(found["image"], key=_natural_key)
    return [Sample(found["image"][s], found["mask"][s], None, _kaggle_group(split, s)) for s in stems]


def _by_key(folder: Path, template: str, key: str = r"\d+", ignore_case: bool = False) -> dict[str, Path]:
    """Files named like `template`, its `{}` matching the regular expression `key`, keyed by that part."""
    pattern = f"({key})".join(re.escape(part) for part in template.split("{}"))
    flags = re.IGNORECASE if ignore_case else 0
    matches = ((re.fullmatch(pattern, path.name, flags), path) for path in folder.iterdir() if path.is_file())
    return {match.group(1): path for match, path in matches if match}


@dataclass(frozen=True)
class FileNaming:
    """Where each role's files lie and how they are named: `{}` in a name is the photograph's key."""

    what: str  # the data set's name in messages
    folders: dict[str, Path]
    names: dict[str, str]
    key: str = r"\d+"
    optional: tuple[str, ...] = ()  # roles whose files may be absent altogether (a second observer)
    ignore_case: tuple[str, ...] = ()  # roles whose names match in any case (HRF's .jpg and .JPG)

    def expected(self, role: str, key: str) -> Path:
        return self.folders[role] / self.names[role].format(key)


def _find(naming: FileNaming, root: Path, split: str, split_dir: Path) -> dict[str, dict[str, Path]]:
    """Each role's files by key; raises listing every missing folder and every file without its partners.
    An optional role counts only where it has files, and then must pair like the others."""
    what = f"{naming.what} layout at {root}"
    required = [role for role in naming.folders if role not in naming.optional]
    _check_folders(root, split, split_dir, sorted({naming.folders[role] for role in required}), what)
    by_key = {
        role: _by_key(naming.folders[role], naming.names[role], naming.key, role in naming.ignore_case)
        for role in naming.folders
        if naming.folders[role].is_dir()
    }
    found = {role: by_key[role] for role in required}
    if not any(found.values()):
        expected_names = ", ".join(naming.names[role].format("NN") for role in required)
        raise DataError(f"{split_dir}: empty split, no {naming.what} files ({expected_names})")
    found.update({role: by_key[role] for role in naming.optional if by_key.get(role)})
    _raise_if(_unpaired(found, {role: partial(naming.expected, role) for role in found}), what)
    return found


def _samples(found: dict[str, dict[str, Path]], keys: list[str], group: Callable[[str], str]) -> list[Sample]:
    optional = {role: found.get(role, {}) for role in ("fov", SECOND_OBSERVER)}
    return [
        Sample(found["image"][k], found["mask"][k], optional["fov"].get(k), group(k), optional[SECOND_OBSERVER].get(k))
        for k in keys
    ]


def drive_samples(root: str | Path, split: str) -> list[Sample]:
    """Samples of DRIVE: images/NN_<kind>.tif, 1st_manual/NN_manual1.gif, mask/NN_<kind>_mask.gif (the FOV),
    and in the test split 2nd_manual/NN_manual2.gif (the second observer)."""
    root = Path(root)
    kind = "training" if split == "train" else "test"
    split_dir = root / kind
    naming = FileNaming(
        "DRIVE",
        {
            "image": split_dir / "images",
            "mask": split_dir / "1st_manual",
            "fov": split_dir / "mask",
            SECOND_OBSERVER: split_dir / "2nd_manual",
        },
        {
            "image": f"{{}}_{kind}.tif",
            "mask": "{}_manual1.gif",
            "fov": f"{{}}_{kind}_mask.gif",
            SECOND_OBSERVER: "{}_manual2.gif",
        },
        optional=(SECOND_OBSERVER,),
    )
    found = _find(naming, root, split, split_dir)
    return _samples(found, sorted(found["image"], key=_natural_key), str)


@dataclass(frozen=True)
class UndividedSet:
    """A benchmark published without a train/test division: which photographs we test on, and the groups."""

    naming: Callable[[Path], FileNaming]
    test_keys: Callable[[list[str]], set[str]]  # from all keys in natural order
    group: Callable[[str], str] = str

    def samples(self, root: str | Path, split: str) -> list[Sample]:
        """Every file is checked whatever the split, so a broken pair is reported before any training."""
        root = Path(root)
        found = _find(self.naming(root), root, split, root)
        keys = sorted(found["image"], key=_natural_key)
        test = self.test_keys(keys)
        return _samples(found, [k for k in keys if (k in test) == (split == "test")], self.group)


def _second_half(keys: list[str]) -> set[str]:
    return set(keys[len(keys) // 2 :])


# STARE: images/imNNNN.ppm, labels-ah/imNNNN.ah.ppm (first observer), labels-vk/imNNNN.vk.ppm (second); no
# FOV masks. Test: the second half of the photographs by number (10 of the 20), train the first half.
STARE = UndividedSet(
    lambda root: FileNaming(
        "STARE",
        {"image": root / "images", "mask": root / "labels-ah", SECOND_OBSERVER: root / "labels-vk"},
        {"image": "im{}.ppm", "mask": "im{}.ah.ppm", SECOND_OBSERVER: "im{}.vk.ppm"},
        optional=(SECOND_OBSERVER,),
    ),
    _second_half,
)

# CHASE_DB1: one folder of Image_NNE.jpg (child NN, eye E = L or R), Image_NNE_1stHO.png (first observer) and
# Image_NNE_2ndHO.png; no FOV masks. A child's two eyes are one group; children 11-14 test, 01-10 train.
CHASE_DB1_FIRST_TEST_CHILD = 11
CHASE_DB1 = UndividedSet(
    lambda root: FileNaming(
        "CHASE_DB1",
        {"image": root, "mask": root, SECOND_OBSERVER: root},
        {"image": "Image_{}.jpg", "mask": "Image_{}_1stHO.png", SECOND_OBSERVER: "Image_{}_2ndHO.png"},
        key=r"\d+[LR]",
        optional=(SECOND_OBSERVER,),
    ),
    lambda keys: {k for k in keys if int(k[:-1]) >= CHASE_DB1_FIRST_TEST_CHILD},
    group=lambda key: key[:-1],
)

# HRF: images/NN_C.jpg (or .JPG; C = h healthy, dr diabetic retinopathy, g glaucoma), manual1/NN_C.tif and
# mask/NN_C_mask.tif (FOV), 3504x2336. Test: numbers 06-15 of each category (30), train 01-05 (15).
HRF_LAST_TRAIN_NUMBER = 5
HRF = UndividedSet(
    lambda root: FileNaming(
        "HRF",
        {"image": root / "images", "mask": root / "manual1", "fov": root / "mask"},
        {"image": "{}.jpg", "mask": "{}.tif", "fov": "{}_mask.tif"},
        key=r"\d+_(?:h|dr|g)",
        ignore_case=("image",),
    ),
    lambda keys: {k for k in keys if int(k.split("_")[0]) > HRF_LAST_TRAIN_NUMBER},
)

stare_samples, chase_db1_samples, hrf_samples = STARE.samples, CHASE_DB1.samples, HRF.samples
