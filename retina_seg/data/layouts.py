"""Find image/mask(/FOV) file triples in the supported on-disk layouts, reporting all problems at once."""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from retina_seg.data.errors import DataError

SPLITS = ("train", "test")
KAGGLE_COPIES = 4  # Kaggle train stores each photograph 4 times: original, h-flip, v-flip, rotation


@dataclass(frozen=True)
class Sample:
    """One image on disk; `group` names the photograph so augmented copies never straddle train and val."""

    image: Path
    mask: Path
    fov: Path | None = None
    group: str = ""


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


def _by_number(folder: Path, template: str) -> dict[str, Path]:
    """Files named like `template` with its `{}` being the photograph number, keyed by that number."""
    pattern = r"(\d+)".join(re.escape(part) for part in template.split("{}"))
    matches = ((re.fullmatch(pattern, path.name), path) for path in folder.iterdir() if path.is_file())
    return {match.group(1): path for match, path in matches if match}


def drive_samples(root: str | Path, split: str) -> list[Sample]:
    """Samples of DRIVE: images/NN_<kind>.tif, 1st_manual/NN_manual1.gif, mask/NN_<kind>_mask.gif (the FOV)."""
    root = Path(root)
    what = f"DRIVE layout at {root}"
    kind = "training" if split == "train" else "test"
    split_dir = root / kind
    folders = {"image": split_dir / "images", "mask": split_dir / "1st_manual", "fov": split_dir / "mask"}
    _check_folders(root, split, split_dir, list(folders.values()), what)
    names = {"image": f"{{}}_{kind}.tif", "mask": "{}_manual1.gif", "fov": f"{{}}_{kind}_mask.gif"}
    found = {role: _by_number(folders[role], names[role]) for role in folders}
    if not any(found.values()):
        expected_names = ", ".join(name.format("NN") for name in names.values())
        raise DataError(f"{split_dir}: empty split, no DRIVE files ({expected_names})")
    expected = {role: (lambda number, role=role: folders[role] / names[role].format(number)) for role in folders}
    _raise_if(_unpaired(found, expected), what)
    numbers = sorted(found["image"], key=_natural_key)
    return [Sample(found["image"][n], found["mask"][n], found["fov"][n], n) for n in numbers]
