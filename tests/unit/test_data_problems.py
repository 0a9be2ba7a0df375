"""Data and output-path problems say what is wrong, all at once, in the user's terms."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from retina_seg.config import ConfigError
from retina_seg.data.errors import DataError
from retina_seg.data.sources import KaggleSource
from retina_seg.inference.settings import export_settings, predict_settings
from tests.helpers.dataset_trees import kaggle_tree
from tests.helpers.environment import REPO_ROOT, require
from tests.helpers.runs import compose

NOBODY = "65534"


def test_a_data_root_that_is_a_file_says_so(tmp_path):
    root = tmp_path / "data.zip"
    root.write_bytes(b"PK")
    with pytest.raises(DataError, match=f"{root}: data root is a file, not a folder"):
        KaggleSource(root).load()


def test_every_split_problem_is_reported_at_once(tmp_path):
    kaggle_tree(tmp_path, "train", images=range(8), masks=range(7))  # image 7 has no mask
    kaggle_tree(tmp_path, "test", images=range(2), masks=range(2))
    (tmp_path / "test" / "image" / "1.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as error:
        KaggleSource(tmp_path, n_val=4).load()
    message = str(error.value)
    assert f"{tmp_path / 'train' / 'image' / '7.png'}: no mask" in message
    assert f"{tmp_path / 'test' / 'image' / '1.png'}: not a readable image file" in message


@pytest.fixture
def open_tmp_path():
    """A folder any user may enter (pytest's own is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="retina-seg-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_an_unreadable_folder_is_permission_denied_not_missing_masks(open_tmp_path):
    tmp_path = open_tmp_path
    kaggle_tree(tmp_path, "train", images=range(8), masks=range(8))
    masks = tmp_path / "train" / "mask"
    masks.chmod(0)
    try:
        probe = [
            "-c",
            "import sys; from retina_seg.data.layouts import kaggle_samples; kaggle_samples(sys.argv[1], 'train')",
            str(tmp_path),
        ]
        if os.geteuid() == 0:  # root lists any folder: ask as an unprivileged user
            require(shutil.which("setpriv") is not None, "setpriv is needed to drop root's privileges")
            command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, *probe]
        else:
            command = [sys.executable, *probe]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        )
    finally:
        masks.chmod(0o755)
    assert result.returncode != 0
    assert f"{masks}: permission denied" in result.stderr and "no mask" not in result.stderr


@pytest.mark.parametrize("config_name, settings", [("predict", predict_settings), ("export", export_settings)])
def test_an_output_path_that_is_a_file_is_a_config_error(tmp_path, config_name, settings):
    output = tmp_path / "taken.txt"
    output.write_text("someone's file")
    cfg = compose(
        [
            f"ckpt_path={tmp_path / 'best.ckpt'}",
            f"output={output}",
            *([f"input={tmp_path}"] if config_name == "predict" else []),
        ],
        config_name=config_name,
    )
    with pytest.raises(
        ConfigError, match=re.escape(f"output={str(output)!r} must be a folder (existing or to create), not a file")
    ):
        settings(cfg)
    assert output.read_text() == "someone's file"
