"""The built-in data set: fundus-like photographs with exact vessel masks, made from a seed (no download)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from retina_seg.data.loading import LoadedSample

_SUPERSAMPLE = 4  # vessels are drawn this many times larger, then averaged down: anti-aliased edges
# Fraction of R, G, B a fully covered pixel loses: low contrast as in real photographs, veins darker.
_VEIN_DARKENING = np.array([0.32, 0.5, 0.45], dtype=np.float32)
_ARTERY_DARKENING = np.array([0.18, 0.35, 0.3], dtype=np.float32)
_MAX_SEGMENTS = 400  # bounds drawing time whatever the random tree does
# Small images would lose their thinnest vessels (coverage < 0.5 leaves them out of the mask) while still
# drawing the whole tree; these two floors, in output pixels, keep the vessel fraction near 5-15% from 64 px up.
_MIN_DRAWN_WIDTH = 0.75
_MIN_BRANCH_WIDTH = 0.4


@dataclass(frozen=True)
class _Eye:
    """Where things are in one photograph, in output pixels."""

    centre: np.ndarray  # (x, y) of the field of view
    radius: float
    disc: np.ndarray
    disc_radius: float
    macula: np.ndarray
    temporal: float  # heading from the disc towards the macula, in radians


def _eye(rng: np.random.Generator, height: int, width: int) -> _Eye:
    """Macula-centred layout like DRIVE: disc on one side, about two thirds of a radius from the centre."""
    centre = np.array([(width - 1) / 2, (height - 1) / 2]) + rng.normal(0, 0.01, 2) * min(height, width)
    radius = 0.47 * min(height, width)
    side = rng.choice([-1.0, 1.0])
    disc = centre + radius * np.array([side * rng.uniform(0.55, 0.7), rng.uniform(-0.08, 0.08)])
    macula = centre + radius * np.array([-side * rng.uniform(0.0, 0.08), rng.uniform(-0.05, 0.05)])
    temporal = float(np.arctan2(*(macula - disc)[::-1]))
    return _Eye(centre, radius, disc, radius * rng.uniform(0.11, 0.14), macula, temporal)


def _distance(height: int, width: int, point: np.ndarray) -> np.ndarray:
    yy, xx = np.ogrid[:height, :width]
    return np.hypot(xx - point[0], yy - point[1]).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency texture in [-1, 1]: a coarse random grid upsampled bicubically."""
    coarse = Image.fromarray(rng.uniform(-1, 1, (cells, cells)).astype(np.float32))
    return np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC))


def _background(rng: np.random.Generator, eye: _Eye, height: int, width: int) -> np.ndarray:
    """Orange-red retina with vignetting, a tilted illumination gradient, a dark macula and a bright disc."""
    rim = _distance(height, width, eye.centre) / eye.radius
    yy, xx = np.ogrid[:height, :width]
    tilt = rng.uniform(0, 2 * np.pi)
    gradient = ((xx - eye.centre[0]) * np.cos(tilt) + (yy - eye.centre[1]) * np.sin(tilt)) / eye.radius
    light = (1 - 0.4 * rim**2) * (1 + rng.uniform(0.05, 0.15) * gradient)
    texture = 0.05 * _smooth_noise(rng, height, width, 7) + 0.02 * _smooth_noise(rng, height, width, 40)
    light = light * (1 + texture)
    light = light * (1 - 0.25 * np.exp(-((_distance(height, width, eye.macula) / (0.25 * eye.radius)) ** 2)))
    colour = np.array([rng.uniform(205, 235), rng.uniform(100, 130), rng.uniform(45, 70)], dtype=np.float32)
    image = light[:, :, None] * colour
    disc = np.exp(-((_distance(height, width, eye.disc) / eye.disc_radius) ** 4))[:, :, None] * 0.85
    return image * (1 - disc) + np.array([250, 225, 150], dtype=np.float32) * disc


def _walk(
    rng: np.random.Generator, eye: _Eye, start: np.ndarray, heading: float, target: float, length: float, step: float
) -> tuple[list[np.ndarray], float]:
    """Points of one vessel segment: a random walk pulled towards `target`, stopped at the FOV rim or fovea."""
    points, position = [np.asarray(start, dtype=float)], np.asarray(start, dtype=float)
    for _ in range(max(2, int(length / step))):
        heading += 0.025 * np.angle(np.exp(1j * (target - heading))) + rng.normal(0, 0.06)
        position = position + step * np.array([np.cos(heading), np.sin(heading)])
        if np.hypot(*(position - eye.centre)) > 0.99 * eye.radius:
            break
        if np.hypot(*(position - eye.macula)) < 0.1 * eye.radius:
            break
        points.append(position)
    return points, heading


def _grow_tree(
    rng: np.random.Generator, eye: _Eye, root: tuple, draw: ImageDraw.ImageDraw, min_width: float, budget: int
) -> int:
    """Draw a branching vessel of at most `budget` segments and return the budget left.

    Forks follow Murray's law (w^3 = w1^3 + w2^3): the trunk narrows a little, the side branch more.
    """
    root_width = root[3]
    stack = [root]
    while stack and budget > 0:
        budget -= 1
        start, heading, target, width = stack.pop()
        length = eye.radius * rng.uniform(0.1, 0.22) * np.sqrt(width / root_width)
        points, heading = _walk(rng, eye, start, heading, target, length, step=0.02 * eye.radius)
        _draw_segment(draw, points, width)
        if len(points) < 2 or np.hypot(*(points[-1] - eye.centre)) > 0.95 * eye.radius:
            continue
        main = width * rng.uniform(0.88, 0.96)
        side = (width**3 - main**3) ** (1 / 3)
        turn = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.1)
        if main >= min_width:
            stack.append((points[-1], heading + rng.normal(0, 0.15), target, main))
        if side >= min_width:
            stack.append((points[-1], heading + turn, heading + turn, side))
    return budget


def _draw_segment(draw: ImageDraw.ImageDraw, points: list[np.ndarray], width: float) -> None:
    scaled = [tuple(point * _SUPERSAMPLE) for point in points]
    pixels = round(max(width, _MIN_DRAWN_WIDTH) * _SUPERSAMPLE)
    draw.line(scaled, fill=255, width=pixels, joint="curve")
    x, y = scaled[0]
    half = pixels / 2
    draw.ellipse((x - half, y - half, x + half, y + half), fill=255)  # fills the gap at a fork


def _vessel_roots(rng: np.random.Generator, eye: _Eye, kind: str) -> list[tuple]:
    """(start, heading, target, width) of each tree: arcades above and below the disc, thinner nasal ones."""
    width = eye.radius * rng.uniform(0.027, 0.033) * (1.0 if kind == "vein" else 0.8)
    roots = []
    for vertical in (-1.0, 1.0):
        start = eye.disc + rng.normal(0, 0.2 * eye.disc_radius, 2)
        heading = eye.temporal + vertical * rng.uniform(1.1, 1.4)
        roots.append((start, heading, eye.temporal + vertical * rng.uniform(0.15, 0.35), width))
    nasal = eye.temporal + np.pi
    for _ in range(rng.integers(1, 3)):
        heading = nasal + rng.uniform(-1.0, 1.0)
        roots.append((eye.disc, heading, heading, width * rng.uniform(0.45, 0.6)))
    heading = eye.temporal + rng.uniform(-0.4, 0.4)
    roots.append((eye.disc, heading, heading, width * rng.uniform(0.35, 0.45)))
    return roots


def _coverage(rng: np.random.Generator, eye: _Eye, height: int, width: int, kind: str) -> np.ndarray:
    """Fraction of each output pixel covered by vessels of one kind (arteries or veins)."""
    canvas = Image.new("L", (width * _SUPERSAMPLE, height * _SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    budget = _MAX_SEGMENTS // 2
    min_width = max(0.007 * eye.radius, _MIN_BRANCH_WIDTH)
    for root in _vessel_roots(rng, eye, kind):
        budget = _grow_tree(rng, eye, root, draw, min_width, budget)
    blocks = np.asarray(canvas, dtype=np.float32).reshape(height, _SUPERSAMPLE, width, _SUPERSAMPLE)
    return blocks.mean(axis=(1, 3)) / 255


def _soften(coverage: np.ndarray, radius: float) -> np.ndarray:
    """Blur vessel edges for the photograph only: real vessels have a smooth, not box-shaped, profile."""
    image = Image.fromarray(np.round(coverage * 255).astype(np.uint8))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255


def synthesize_fundus(seed: int, height: int = 256, width: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fundus-like photograph (uint8 HxWx3), its exact vessel mask and its field-of-view mask (bool HxW)."""
    rng = np.random.default_rng(seed)
    eye = _eye(rng, height, width)
    fov = _distance(height, width, eye.centre) <= eye.radius
    veins = _coverage(rng, eye, height, width, "vein") * fov
    arteries = _coverage(rng, eye, height, width, "artery") * fov
    vessels = np.maximum(veins, arteries) >= 0.5
    image = _background(rng, eye, height, width)
    blur = 0.3 * eye.radius / 120
    for coverage, darkening in ((veins, _VEIN_DARKENING), (arteries, _ARTERY_DARKENING)):
        image = image * (1 - _soften(coverage, blur)[:, :, None] * darkening)
    image = image + rng.normal(0, 2.5, image.shape).astype(np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8) * fov[:, :, None]
    return image, vessels, fov


def _seeds(seed: int, count: int) -> list[int]:
    return np.random.default_rng(seed).integers(0, 2**31, count).tolist()


def _kaggle_copies(image: np.ndarray, mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The four stored versions of one Kaggle photograph: original, h-flip, v-flip, rotation."""
    views = (lambda a: a, lambda a: a[:, ::-1], lambda a: a[::-1], lambda a: np.rot90(a))
    return [(view(image), view(mask)) for view in views]


def _write_pair(folder: Path, name: str, image: np.ndarray, mask: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(image)).save(folder / "image" / f"{name}.png")
    Image.fromarray(np.ascontiguousarray(mask).astype(np.uint8) * 255).save(folder / "mask" / f"{name}.png")


def write_synthetic_kaggle_layout(
    root: str | Path, n_train: int = 8, n_test: int = 4, size: int = 128, seed: int = 0
) -> Path:
    """Write PNGs in the Kaggle layout; train files 4k..4k+3 are one photograph, as in the real set."""
    root = Path(root)
    for split in ("train", "test"):
        for part in ("image", "mask"):
            (root / split / part).mkdir(parents=True, exist_ok=True)
    photographs = -(-n_train // 4)
    seeds = _seeds(seed, photographs + n_test)
    for photo in range(photographs):
        image, mask, _ = synthesize_fundus(seeds[photo], size, size)
        for copy, pair in enumerate(_kaggle_copies(image, mask)[: n_train - 4 * photo]):
            _write_pair(root / "train", str(4 * photo + copy), *pair)
    for index in range(n_test):
        image, mask, _ = synthesize_fundus(seeds[photographs + index], size, size)
        _write_pair(root / "test", str(index), image, mask)
    return root


def synthetic_samples(n: int, height: int = 256, width: int = 256, seed: int = 0) -> list[LoadedSample]:
    """In-memory synthetic samples, one photograph (group) each. Fresh arrays every call: callers may change them."""
    samples = []
    for index, photo_seed in enumerate(_seeds(seed, n)):
        image, vessels, fov = (array.copy() for array in _remembered_fundus(photo_seed, height, width))
        samples.append(LoadedSample(f"synthetic_{index}", image, vessels, fov, str(index)))
    return samples


@lru_cache(maxsize=512)
def _remembered_fundus(seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """synthesize_fundus, drawn once per process: a photograph takes ~0.05-0.1 s of vessel-tree walking, and one
    process (a sweep, a test session) asks for the same photographs again and again."""
    return synthesize_fundus(seed, height, width)
