"""The install steps of the README and .ci/run, run for real on a machine made as bare as a test can make it.

A branch that only runs when something is missing hid a bug on every installed machine (issue 12), so
these tests take the missing thing away first: a Debian package is purged before the installer runs, and
the README's main-job command runs in a new virtual environment that has none of the project's packages.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.helpers.environment import REPO_ROOT, require

# The apt installer and a bare virtualenv.
pytestmark = pytest.mark.slow

INSTALLER = REPO_ROOT / ".ci" / "install-debian-packages.sh"
# GNU hello: 280 kB, depends on libc only, and nothing in the project or the SLURM stack needs it.
PROBE_PACKAGE = "hello"


def _installed(package: str) -> bool:
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return status.stdout == "install ok installed"


def _run_installer(*packages: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(INSTALLER), *packages],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def apt_as_root():
    require(
        shutil.which("apt-get") is not None and shutil.which("dpkg-query") is not None,
        "apt-get and dpkg-query are needed to test the Debian install step",
    )
    require(os.geteuid() == 0, "the Debian install step is tested as root (CI runs as root)")


def test_installer_installs_a_missing_package_as_root(apt_as_root):
    subprocess.run(
        ["apt-get", "purge", "-y", "-q", PROBE_PACKAGE],
        capture_output=True,
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    assert not _installed(PROBE_PACKAGE)
    try:
        first = _run_installer(PROBE_PACKAGE)
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
        assert f"installing: {PROBE_PACKAGE}" in first.stdout
        assert _installed(PROBE_PACKAGE)
        greeting = subprocess.run(["/usr/bin/hello"], capture_output=True, text=True)
        assert greeting.stdout.strip() == "Hello, world!"
        again = _run_installer(PROBE_PACKAGE)
        assert again.returncode == 0 and f"already installed: {PROBE_PACKAGE}" in again.stdout
    finally:
        subprocess.run(
            ["apt-get", "purge", "-y", "-q", PROBE_PACKAGE],
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )


def test_installer_default_list_is_what_the_slurm_cluster_and_the_report_page_need(apt_as_root):
    """With no arguments it checks the SLURM packages and chromium; after .ci/run they are all there."""
    from devtools.slurm_cluster import missing_binaries

    result = _run_installer()
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("install-debian-packages: already installed: munge slurm-client")
    assert result.stdout.rstrip().endswith(" chromium")
    assert missing_binaries() == []
    assert shutil.which("chromium") is not None


def test_installer_uses_sudo_when_not_root(tmp_path):
    """The non-root branch, with stand-ins for id (a user), dpkg-query (nothing installed) and sudo."""
    calls = tmp_path / "sudo.calls"
    for name, body in {"id": "echo 1000", "dpkg-query": "exit 1", "sudo": f'echo "$*" >> {calls}'}.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)
    result = _run_installer(PROBE_PACKAGE, env={"PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [
        "-E apt-get update -q",
        f"-E apt-get install -y -q --no-install-recommends {PROBE_PACKAGE}",
    ]


def readme_main_command() -> str:
    """The README's main-job command: the bash block that installs torch and runs retina-seg-train."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO_ROOT / "README.md").read_text(), flags=re.S)
    commands = [b.strip() for b in blocks if "pip install torch" in b and "retina-seg-train" in b]
    assert len(commands) == 1, f"expected one main-job command in README.md, found {commands}"
    return commands[0]


@pytest.mark.slow
def test_readme_main_command_works_in_a_bare_virtualenv(tmp_path):
    """The README's main job, word for word up to its training run, in a venv without the project's
    packages: the pip steps must install everything it imports (`pip check` clean). The run itself is
    shortened to two epochs to keep the suite fast."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bindir = venv / "bin"
    bare = subprocess.run([bindir / "python", "-c", "import torch"], capture_output=True)
    assert bare.returncode != 0, "the new venv already sees torch: it is not bare"
    command = readme_main_command().replace(
        "experiment=quickstart", f"experiment=quickstart trainer.max_epochs=2 paths.output_dir={tmp_path / 'run'}"
    )
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        ["bash", "-c", command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").is_file()
    check = subprocess.run([bindir / "python", "-m", "pip", "check"], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and 0.0 < metrics["test_IoU"] <= 1.0
