"""The packages a GPU node without network access lacks: which they are, wheels of them downloaded
beforehand on a networked machine, and the import names the check needs before it starts."""

import importlib.metadata
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

from benchmarks.gpu_check.scales import REPO_ROOT

# What a GPU node is expected to have already; everything else the project imports travels as wheels.
NODE_PROVIDES = ("torch", "lightning", "torchmetrics")


def _requirement_names(requirements: list[str]) -> list[str]:
    from packaging.requirements import Requirement

    names = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return names


def dependency_closure(roots: list[str], exclude: tuple[str, ...] = NODE_PROVIDES) -> dict[str, str]:
    """{distribution: installed version} of ``roots`` and everything they need, without ``exclude``
    and everything the excluded ones need (the node has those)."""

    def closure(names: list[str]) -> dict[str, str]:
        found, todo = {}, list(names)
        while todo:
            name = todo.pop().lower().replace("_", "-")
            if name in found:
                continue
            try:
                distribution = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            found[name] = distribution.version
            todo += _requirement_names(distribution.requires or [])
        return found

    provided = closure(list(exclude))
    return {name: version for name, version in closure(roots).items() if name not in provided}


def project_dependencies() -> list[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return _requirement_names([*project["dependencies"], *project["optional-dependencies"]["export"]])


def prepare_wheels(folder: Path, python_version: str) -> int:
    """Download (no install) wheels of every project dependency the node lacks, for its Python."""
    pins = [f"{name}=={version}" for name, version in sorted(dependency_closure(project_dependencies()).items())]
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28, 31, 34, 35)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(folder),
        f"--python-version={python_version}",
        "--implementation=cp",
        "--platform=manylinux2014_x86_64",
        *platforms,
        "--platform=any",
        *pins,
    ]
    print(" ".join(command), flush=True)
    return subprocess.run(command).returncode


def missing_modules() -> list[str]:
    """Import names the check needs that this Python cannot find."""
    needed = (
        "torch",
        "lightning",
        "torchmetrics",
        "hydra",
        "omegaconf",
        "albumentations",
        "submitit",
        "hydra_plugins.hydra_submitit_launcher",
        "pytest",
        "onnx",
        "onnxruntime",
        "safetensors",
        "skimage",
    )
    return [name for name in needed if _find(name) is None]


def _find(name: str):
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
