"""benchmarks/gpu_check/ in its CPU dry run (every stage at toy size, the GPU-path tests on the CPU),
its refusals, and the list of wheels a GPU node without network access needs."""

import json

import pytest

from benchmarks.gpu_check.scales import SETTINGS
from benchmarks.gpu_check.wheels import NODE_PROVIDES, dependency_closure, project_dependencies
from tests.helpers.environment import REPO_ROOT
from tests.helpers.runs import run_main

# The GPU-path tests themselves run in the suite (CI sets RETINA_SEG_CHECK_DEVICE=cpu, tests/gpu): the dry run
# checks the stage that runs them with one, not pytest inside pytest over all of them.
ONE_GPU_TEST = "test_metrics_on_the_device_equal_the_cpu_computation"


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    args = ["--cpu-dry-run", "--select", ONE_GPU_TEST, "--out", str(out)]
    result = run_main("benchmarks.gpu_check", *args, cwd=REPO_ROOT)
    return result, json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


@pytest.mark.slow
def test_dry_run_runs_the_selected_gpu_path_test_on_the_cpu(dry_run):
    result, data, _ = dry_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    correctness = data["stages"]["correctness"]
    assert correctness["passed"] and not correctness["timed_out"]
    assert correctness["tests"] == {ONE_GPU_TEST: "passed"}
    assert data["dry_run"] is True and "cores" in data["machine"]


@pytest.mark.slow
def test_dry_run_measures_every_throughput_variant(dry_run):
    _, data, _ = dry_run
    throughput = data["stages"]["throughput"]
    assert throughput["skipped_at_cap"] == []
    rates = throughput["images_per_s"]
    for model in ("unet", "unet_reference"):
        for setting in SETTINGS:
            assert rates[f"{model}/device only/{setting}"] > 0
        for workers in (0, 1):
            assert rates[f"{model}/pipeline/bf16+channels_last/{workers} workers"] > 0
        assert rates[f"{model}/plain loop/bf16+channels_last/1 workers"] > 0
    assert all(value is not None and value > 0 for value in throughput["ratios"].values())
    assert throughput["ratios"]["unet/speed-up fp32 over fp32"] == 1.0


@pytest.mark.slow
def test_dry_run_trains_both_quality_runs_and_writes_the_table(dry_run):
    _, data, markdown = dry_run
    quality = data["stages"]["quality"]
    assert set(quality) == {"kaggle_gpu recipe", "reference job 18808 (1000 epochs) on our settings"}
    for run in quality.values():
        assert "failed" not in run, run
        assert run["epochs_reached"] == run["epochs_asked"] == 1
        assert 0 <= run["test_IoU (ours: pooled, in FOV, threshold from val)"] <= 1
        assert 0 <= run["test_IoU (the reference's protocol: masks > 0, per-image at 0.5, all pixels)"] <= 1
    for heading in ("## 1. Correctness: passed", "## 2. Throughput", "## 3. Quality against time"):
        assert heading in markdown


def test_without_a_gpu_it_refuses_to_pretend(tmp_path):
    result = run_main("benchmarks.gpu_check", "--out", str(tmp_path), cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2 and "no CUDA device is visible" in result.stderr
    assert not (tmp_path / "gpu_check.json").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget-s", "10"], "--budget-s must be at least 60, got 10.0"),
        (["--kaggle-root", "/nonexistent"], "--kaggle-root /nonexistent: no train/"),
    ],
)
def test_bad_arguments_are_named(tmp_path, args, message):
    result = run_main("benchmarks.gpu_check", "--out", str(tmp_path), *args, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2 and message in result.stderr


def test_wheels_cover_what_the_node_lacks_and_nothing_it_has():
    needed = dependency_closure(project_dependencies())
    assert {
        "hydra-core",
        "omegaconf",
        "antlr4-python3-runtime",
        "albumentations",
        "submitit",
        "comet-ml",
        "hydra-submitit-launcher",
    } <= set(needed)
    provided = dependency_closure(list(NODE_PROVIDES), exclude=())
    assert {"torch", "lightning", "torchmetrics"} <= set(provided)
    assert not set(needed) & set(provided)
