"""Stage 1: the GPU-path tests (tests/gpu) on the device, as pytest runs them."""

import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.gpu_check.scales import DEVICE_VARIABLE, REPO_ROOT, Scale


def correctness(scale: Scale, cap_s: float, scratch: Path, select: str | None = None) -> dict:
    """tests/gpu under pytest on the device (those matching the pytest ``-k`` expression ``select``, else all);
    counts read back from its JUnit XML."""
    import xml.etree.ElementTree as ElementTree

    junit = scratch / "gpu-tests.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/gpu", f"--junitxml={junit}"]
    command += ["-k", select] if select else []
    env = {**os.environ, DEVICE_VARIABLE: scale.device, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=cap_s)
        output, timed_out = result.stdout + result.stderr, False
    except subprocess.TimeoutExpired as expired:
        output, timed_out = _text(expired.stdout) + _text(expired.stderr), True
    cases = ElementTree.parse(junit).getroot().iter("testcase") if junit.exists() else []
    outcomes = {case.get("name"): _outcome(case) for case in cases}
    passed = not timed_out and bool(outcomes) and all(o == "passed" for o in outcomes.values())
    return {
        "passed": passed,
        "timed_out": timed_out,
        "seconds": round(time.monotonic() - started, 1),
        "tests": outcomes,
        "output_tail": output[-3000:] if not passed else "",
    }


def _outcome(case) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
    return "passed"


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")
