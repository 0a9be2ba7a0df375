"""Folders in each public data set's layout (Kaggle, DRIVE, CHASE_DB1, HRF), generated in a test's tmp_path:
blank 4x4 images by default, or synthetic fundus photographs with their vessels and FOV where a size is given."""

from pathlib import Path

import numpy as np
from PIL import Image

from retina_seg.data.synthetic import synthesize_fundus

TINY = np.zeros((4, 4), dtype=np.uint8)


def write_image(path: Path, pixels: np.ndarray = TINY) -> Path:
    """Save `pixels` at `path` (its format from the extension), making the folders it needs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def kaggle_tree(root: Path, split: str = "train", images=range(12), masks=range(12)) -> Path:
    for part in ("image", "mask"):
        (root / split / part).mkdir(parents=True, exist_ok=True)
    for stem in images:
        write_image(root / split / "image" / f"{stem}.png")
    for stem in masks:
        write_image(root / split / "mask" / f"{stem}.png")
    return root


def drive_tree(root: Path, kind: str, numbers) -> Path:
    names = {"images": f"{{}}_{kind}.tif", "1st_manual": "{}_manual1.gif", "mask": f"{{}}_{kind}_mask.gif"}
    for role in names:
        (root / kind / role).mkdir(parents=True, exist_ok=True)
        for number in numbers:
            write_image(root / kind / role / names[role].format(f"{number:02d}"))
    return root


def _photograph_files(seed: int, size: int | None) -> dict[str, np.ndarray]:
    """Pixels of one photograph's files: blank 4x4 ones, or a synthetic fundus photograph of `size` pixels with
    its vessels (first and second observer) and FOV."""
    if size is None:
        return {role: TINY for role in ("image", "mask", "second", "fov")}
    image, vessels, fov = synthesize_fundus(seed, size, size)
    binary = vessels.astype(np.uint8) * 255
    return {"image": image, "mask": binary, "second": binary, "fov": fov.astype(np.uint8) * 255}


def chase_db1_tree(root: Path, children, second: bool = True, size: int | None = None) -> Path:
    """CHASE_DB1's one flat folder: Image_NNE.jpg, Image_NNE_1stHO.png (and _2ndHO.png) for both eyes."""
    for child in children:
        for eye in "LR":
            stem = f"Image_{child:02d}{eye}"
            pixels = _photograph_files(child * 2 + (eye == "R"), size)
            write_image(root / f"{stem}.jpg", pixels["image"])
            write_image(root / f"{stem}_1stHO.png", pixels["mask"])
            if second:
                write_image(root / f"{stem}_2ndHO.png", pixels["second"])
    return root


def hrf_tree(root: Path, numbers, categories=("h", "dr", "g"), size: int | None = None) -> Path:
    """HRF: images/NN_C.jpg (the glaucoma ones as .JPG, as in the release), manual1/NN_C.tif, mask/NN_C_mask.tif."""
    for number in numbers:
        for index, category in enumerate(categories):
            key = f"{number:02d}_{category}"
            pixels = _photograph_files(number * 3 + index, size)
            write_image(root / "images" / f"{key}.{'JPG' if category == 'g' else 'jpg'}", pixels["image"])
            write_image(root / "manual1" / f"{key}.tif", pixels["mask"])
            write_image(root / "mask" / f"{key}_mask.tif", pixels["fov"])
    return root
