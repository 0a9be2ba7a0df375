"""Imports point one way: pyproject's import-linter layers hold for the code, and a back-arrow breaks them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [
        sys.executable,
        "-c",
        "from importlinter.cli import lint_imports_command; lint_imports_command()",
        "--no-cache",
    ]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_layers_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "retina_seg layers KEPT" in result.stdout


def test_an_import_from_the_records_package_up_into_training_breaks_them(tmp_path):
    shutil.copytree(ROOT / "retina_seg", tmp_path / "retina_seg", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    run_folder = tmp_path / "retina_seg" / "records" / "run_folder.py"
    run_folder.write_text(run_folder.read_text() + "\nfrom ..training import pipeline  # the back-arrow\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "retina_seg.records.run_folder -> retina_seg.training.pipeline" in result.stdout
