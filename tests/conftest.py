"""Shared fixtures: where the real data lives, and the rule that real parts fail (not skip) in CI."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RETINA_SEG_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def require(condition: bool, reason: str) -> None:
    """Skip outside CI, fail inside CI: a missing real part must never pass silently there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kaggle_root() -> Path:
    root = SHARED_DATA / "retina-blood-vessel"
    require((root / "train" / "image").is_dir(), f"Kaggle retina set not found at {root}")
    return root


@pytest.fixture(scope="session")
def drive_root() -> Path:
    root = SHARED_DATA / "DRIVE"
    require((root / "training" / "images").is_dir(), f"DRIVE not found at {root}")
    return root
