"""Test helpers live in one place: code that test modules share is in tests/helpers and fixtures in conftest.py
files, so no test module imports another test module or a conftest.py, and nothing outside tests/ imports tests
(the local SLURM cluster the tests and benchmarks share is devtools/, left out of the wheel like tests/)."""

import ast
from pathlib import Path

from setuptools.config.pyprojecttoml import read_configuration

from tests.helpers.environment import REPO_ROOT

OUTSIDE_TESTS = ("benchmarks", "devtools", "hydra_plugins", "retina_seg")


def module_name(path: Path) -> str:
    """The dotted name a file under the repository imports as (a package's __init__.py is the package)."""
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in `source`, the code of `module`. ``from a import b`` yields
    a.b as well as a, since b may be a module; relative imports are resolved against `module`'s package."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            anchor = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*anchor, *filter(None, [node.module])])
            found += [(node.lineno, base), *((node.lineno, f"{base}.{alias.name}") for alias in node.names)]
    return found


def forbidden_in_tests(name: str) -> bool:
    """A test module (test_*) or a conftest, which test code must not import."""
    return any(part.startswith("test_") or part == "conftest" for part in name.split("."))


def violations(folder: str, forbidden) -> list[str]:
    """'path:line imports name' for every import statement under `folder` that `forbidden` rejects."""
    found = {}
    for path in sorted((REPO_ROOT / folder).rglob("*.py")):
        for line, name in imports(path.read_text(), module_name(path), is_package=path.name == "__init__.py"):
            if forbidden(name):
                found.setdefault(f"{path.relative_to(REPO_ROOT)}:{line}", name)
    return [f"{place} imports {name}" for place, name in found.items()]


def test_the_scan_resolves_every_form_of_import():
    source = (
        "import tests.unit.test_layouts\nfrom tests.integration import test_sweeps\n"
        "from .test_cluster import poll\nfrom ..integration.test_sweeps import multirun\n"
        "from ..conftest import require\nfrom tests.helpers.slurm import run\n"
    )
    names = [name for _, name in imports(source, "tests.slurm.test_multinode") if forbidden_in_tests(name)]
    assert names == [
        "tests.unit.test_layouts",
        "tests.integration.test_sweeps",
        "tests.slurm.test_cluster",
        "tests.slurm.test_cluster.poll",
        "tests.integration.test_sweeps",
        "tests.integration.test_sweeps.multirun",
        "tests.conftest",
        "tests.conftest.require",
    ]
    assert module_name(REPO_ROOT / "tests" / "helpers" / "__init__.py") == "tests.helpers"


def test_no_test_module_imports_another_test_module_or_a_conftest():
    assert violations("tests", forbidden_in_tests) == []


def test_nothing_outside_tests_imports_tests():
    for folder in OUTSIDE_TESTS:
        assert list((REPO_ROOT / folder).rglob("*.py")), f"{folder}/ has no Python files to scan"
        assert violations(folder, lambda name: name.split(".")[0] == "tests") == []


def test_the_wheel_leaves_out_tests_benchmarks_and_devtools():
    """The packages pyproject.toml's discovery finds, as a build would."""
    packages = read_configuration(REPO_ROOT / "pyproject.toml")["tool"]["setuptools"]["packages"]
    assert "retina_seg" in packages and "hydra_plugins.retina_seg_sweeper" in packages
    assert "hydra_plugins.retina_seg_launcher" in packages
    assert [p for p in packages if p.split(".")[0] in {"tests", "benchmarks", "devtools"}] == []
