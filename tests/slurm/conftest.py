"""Fixtures for tests that need a real SLURM cluster (brought up by devtools/slurm_cluster/).

Outside CI a machine without SLURM skips these tests; in CI (CI=true) a missing or broken cluster
fails them, so the SLURM path can never pass by being silently skipped.
"""

from pathlib import Path

import pytest

from devtools.slurm_cluster import SlurmCluster, SlurmError, missing_binaries
from tests.helpers.environment import require

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Every test under tests/slurm gets the `slurm` and `slow` markers (so `-m "not slurm"` and the fast tier,
    `-m "not slow"`, deselect them). tests/conftest.py puts them in one xdist group: the session's cluster serves
    them all, in one worker."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.slurm)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def slurm_cluster():
    """The running cluster, started once per session; stopped at the end only if we started it.

    A cluster already up (e.g. from `python -m devtools.slurm_cluster start`) is reused and left up.
    """
    missing = missing_binaries()
    require(not missing, f"SLURM programs not installed ({', '.join(missing)}); run .ci/install-debian-packages.sh")
    cluster = SlurmCluster()
    try:
        started = cluster.start()
    except (SlurmError, OSError) as exc:
        cluster.stop()  # do not leave half a cluster behind; its logs stay in cluster.root
        require(False, f"SLURM cluster could not start: {exc}")
    yield cluster
    if started:
        cluster.stop()
