"""Which files to predict (FILE, FOLDER or GLOB), their output names, and their masks found by name."""

from __future__ import annotations

import glob
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..data.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pnm", ".bmp")


@dataclass
class InputSet:
    """Files to predict, and files of a folder or glob left out because their names are not images'."""

    images: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _visible_files(paths) -> list[Path]:
    return sorted(p for p in paths if p.is_file() and not p.name.startswith("."))


def _add_matches(found: InputSet, files: list[Path], source: str) -> None:
    images = [p for p in files if _is_image_name(p)]
    if not images:
        others = f" (only non-image files: {', '.join(p.name for p in files[:5])})" if files else ""
        raise DataError(f"input {source}: no image files ({', '.join(IMAGE_SUFFIXES)}){others}")
    found.images.extend(images)
    found.skipped.extend(p for p in files if not _is_image_name(p))


def resolve_inputs(spec: str | list[str]) -> InputSet:
    """Expand each entry: a folder gives its image files, a glob its matches, a file itself (whatever its name).

    A folder or glob with no image file is an error; a named file that is missing or not an image fails on
    its own later, without stopping the others.
    """
    entries = [spec] if isinstance(spec, (str, Path)) else list(spec)
    if not entries:
        raise DataError("input: no file, folder or glob given")
    found = InputSet()
    for entry in map(str, entries):
        path = Path(entry)
        if path.is_dir():
            _add_matches(found, _visible_files(path.iterdir()), f"folder {path}")
        elif not path.exists() and any(char in entry for char in "*?["):
            _add_matches(found, _visible_files(Path(p) for p in glob.glob(entry, recursive=True)), f"glob {entry!r}")
        else:
            found.images.append(path)
    found.images = list(dict.fromkeys(found.images))
    return found


def output_names(images: list[Path]) -> dict[Path, str]:
    """Output file prefix per image: its stem, plus its extension (then a counter) where stems collide."""
    stems = Counter(p.stem for p in images)
    names, taken = {}, Counter()
    for path in images:
        name = path.stem if stems[path.stem] == 1 else f"{path.stem}_{path.suffix.lstrip('.')}"
        taken[name] += 1
        names[path] = name if taken[name] == 1 else f"{name}_{taken[name]}"
    return names


def _leading_id(stem: str) -> str:
    return stem.split("_", 1)[0]


class NameIndex:
    """Masks of a folder found by an image's name: the same stem, else the same leading id before "_"
    (DRIVE: 01_test.tif has 01_manual1.gif and 01_test_mask.gif)."""

    def __init__(self, folder: str | Path, what: str):
        self.folder, self.what = Path(folder), what
        if not self.folder.is_dir():
            raise DataError(f"{what} folder {self.folder}: not a folder")
        self.by_stem, self.by_id = defaultdict(list), defaultdict(list)
        for path in _visible_files(self.folder.iterdir()):
            self.by_stem[path.stem].append(path)
            self.by_id[_leading_id(path.stem)].append(path)

    def find(self, image: Path) -> Path:
        for candidates in (self.by_stem.get(image.stem, []), self.by_id.get(_leading_id(image.stem), [])):
            if len(candidates) == 1:
                return candidates[0]
            if len(candidates) > 1:
                names = ", ".join(p.name for p in candidates)
                raise DataError(f"{image}: several {self.what} files in {self.folder} match it ({names})")
        raise DataError(
            f"{image}: no {self.what} file in {self.folder} named {image.stem}.* or {_leading_id(image.stem)}_*"
        )
