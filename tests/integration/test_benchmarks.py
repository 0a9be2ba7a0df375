"""The speed benchmarks: each --quick mode runs as a user runs it and ends with its ratio line; the
turn-taking that makes their side-by-side numbers comparable. No time thresholds: timing here is noisy."""

import json
import re

import pytest
import torch

from benchmarks.common import run_in_turns
from benchmarks.efficiency import BF16_NOT_MEASURED
from benchmarks.latency import LARGE_SOURCES, STAGES
from benchmarks.rescaled import UPSAMPLINGS
from retina_seg.launch.resources import cpu_bf16_flags
from retina_seg.records.protocols import REFERENCE
from tests.helpers.environment import REPO_ROOT, require
from tests.helpers.runs import run_main

NUMBER = r"(\d+\.\d+)"
LAST_LINES = {
    "benchmarks.throughput": rf"overhead ratio \(pipeline/plain, default net\): {NUMBER}",
    "benchmarks.latency": rf"inference speed-up \(fp32 / channels_last\+bf16, default net, 1x3x\d+x\d+\): {NUMBER}",
    "benchmarks.efficiency": (
        r"conv efficiency \(achieved conv GFLOP/s / fp32 matmul GFLOP/s, default net, "
        rf"fp32 channels_last\): {NUMBER}"
    ),
}


def headline(module: str, results: dict) -> float:
    """The number the last line prints, read from the JSON results instead."""
    if module == "benchmarks.throughput":
        return results["cases"][-1]["overhead_ratio"]
    if module == "benchmarks.latency":
        return results["latency"][-1]["speedup_bf16"]
    return results["cases"][-1]["variants"]["fp32"]["fraction"]


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Each --quick mode once, run from the repository root as the README says; (process, JSON results)."""
    cache = {}

    def run(module: str):
        if module not in cache:
            out = tmp_path_factory.mktemp("bench") / "results.json"
            result = run_main(module, "--quick", "--json", str(out), cwd=REPO_ROOT, timeout=300)
            assert result.returncode == 0, result.stderr[-3000:]
            cache[module] = result, json.loads(out.read_text())
        return cache[module]

    return run


def by_module(module: str):
    """The xdist group of a benchmark's tests: its quick run (the quick_runs fixture) is made once, in one worker,
    and each benchmark can run beside the others."""
    return pytest.mark.xdist_group(module)


@pytest.mark.slow
@pytest.mark.parametrize("module", [pytest.param(module, marks=by_module(module)) for module in LAST_LINES])
def test_quick_mode_ends_with_its_ratio_line(module, quick_runs):
    result, results = quick_runs(module)
    lines = result.stdout.strip().splitlines()
    match = re.fullmatch(LAST_LINES[module], lines[-1])
    assert match, lines[-5:]
    assert "not measured (no GPU on this machine)" in result.stdout
    assert results["quick"] is True and "cores" in results["machine"]
    value = headline(module, results)
    assert value > 0 and float(match.group(1)) == pytest.approx(value, abs=0.0051)


@pytest.mark.slow
@by_module("benchmarks.throughput")
def test_throughput_quick_measures_every_variant_every_round(quick_runs):
    _, results = quick_runs("benchmarks.throughput")
    cases = results["cases"]
    assert [c["model"] for c in cases] == ["unet_reference", "unet"]
    for case in cases:
        rates = case["images_per_s"]
        assert set(rates) == {"plain_fp32", "pipeline_fp32", "pipeline_channels_last", "pipeline_channels_last_bf16"}
        assert all(len(values) == case["rounds"] and min(values) > 0 for values in rates.values())
    assert cases[0]["parameters"] > 30e6 > cases[1]["parameters"]


@pytest.mark.slow
@by_module("benchmarks.efficiency")
def test_efficiency_times_bf16_only_where_the_cpu_computes_it(quick_runs):
    """Emulated bf16 products are hundreds of times slower than fp32: timing them would measure the emulation."""
    result, results = quick_runs("benchmarks.efficiency")
    has_bf16 = bool(cpu_bf16_flags())
    assert set(results["cases"][-1]["variants"]) == ({"fp32", "bf16"} if has_bf16 else {"fp32"})
    assert (BF16_NOT_MEASURED in result.stdout) is not has_bf16


@pytest.mark.slow
@by_module("benchmarks.latency")
def test_latency_quick_times_a_real_predict_over_the_folder(quick_runs):
    _, results = quick_runs("benchmarks.latency")
    [predict] = results["predict"]
    assert predict["model"] == "unet" and predict["images"] == 4
    assert set(predict["images_per_s"]) == {"channels_last", "fp32 default layout"}
    assert all(rate > 0 for rate in predict["images_per_s"].values())
    assert all(predict["command_s"][name] > predict["images"] / rate for name, rate in predict["images_per_s"].items())
    large = results["large"]
    require(large is not None, "DRIVE or CHASE_DB1 missing: large photographs not measured")
    assert set(large["photographs"]) == set(LARGE_SOURCES) and set(large["median_s"]) == set(STAGES)
    assert all(len(values) == len(LARGE_SOURCES) for values in large["seconds"].values())
    assert large["stages_s"] == pytest.approx(sum(large["median_s"].values())) and large["predict_images_per_s"] > 0


@pytest.mark.slow
@by_module("benchmarks.time_budget")
def test_time_budget_quick_measures_both_thread_counts_against_the_budget(quick_runs):
    result, results = quick_runs("benchmarks.time_budget")
    runs = results["runs"]
    assert [run["threads"] for run in runs] == [1, 2] and results["budget_s"] == 10
    for run in runs:
        assert run["training_over_budget"] == pytest.approx(run["training_s"] / 10, abs=1e-3)
        assert run["command_s"] > run["training_s"] > 0 and run["epochs"] > 1
        assert run["last_lr_over_peak"] < 0.02  # annealed to the last few percent of the schedule
    last = re.fullmatch(
        rf"training time / budget \(1 thread, 2 threads\): {NUMBER}, {NUMBER}", result.stdout.splitlines()[-1]
    )
    assert last and [float(last.group(i)) for i in (1, 2)] == pytest.approx(
        [r["training_over_budget"] for r in runs], abs=1e-3
    )


def test_a_bad_option_is_named_and_exits_non_zero():
    result = run_main("benchmarks.throughput", "--fast-workers", "-1", cwd=REPO_ROOT, timeout=120)
    assert result.returncode != 0
    assert "--fast-workers must be >= 0, got -1" in result.stderr


def test_loops_take_turns_window_by_window():
    order = []

    def loop(name):
        def run(clock):
            while True:
                order.append(name)
                if clock.step_done():
                    return

        return run

    seconds = run_in_turns({name: loop(name) for name in "abc"}, warmup=1, steps=2, rounds=3)
    assert all(len(values) == 3 and min(values) > 0 for values in seconds.values())
    # The warm-up steps are one turn, then each turn is one window; the order moves on by one each round.
    assert "".join(order) == "abc" + "bbccaa" + "ccaabb" + "aabbcc"


def test_a_failing_loop_stops_the_others_and_its_error_is_raised():
    def steady(clock):
        while not clock.step_done():
            pass

    def failing(clock):
        clock.step_done()
        raise ValueError("data.source.height=7 is too small")

    with pytest.raises(ValueError, match="height=7"):
        run_in_turns({"steady": steady, "failing": failing}, warmup=1, steps=1, rounds=5)


def test_a_loop_that_ends_early_is_named():
    def short(clock):
        clock.step_done()

    with pytest.raises(RuntimeError, match="short: its loop ended after 1 steps"):
        run_in_turns({"short": short}, warmup=1, steps=1, rounds=2)


@pytest.mark.slow
@by_module("benchmarks.quality")
def test_quality_quick_trains_each_seed_evaluates_on_drive_and_resumes(tmp_path, drive_root):
    out, results_path = tmp_path / "runs", tmp_path / "quality.json"
    args = [
        "--quick",
        "--seeds",
        "0",
        "1",
        "--drive-root",
        str(drive_root),
        "--out",
        str(out),
        "--json",
        str(results_path),
        "--protocols",
        "strict",
        "reference",
    ]
    result = run_main("benchmarks.quality", *args, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(results_path.read_text())
    claims = result.stdout.strip().splitlines()[-2:]
    for claim, protocol, key, source in (
        (claims[0], "strict protocol: in the FOV, threshold from val", "test_IoU", "kaggle"),
        (claims[1], "the reference's protocol", "test_IoU_reference_protocol", "kaggle_reference_protocol"),
    ):
        ious = [results[source][seed][key] for seed in ("0", "1")]
        mean, spread = sum(ious) / 2, abs(ious[0] - ious[1]) / 2**0.5
        assert claim == f"mean test IoU over 2 seeds (Kaggle test split, {protocol}): {mean:.4f} +- {spread:.4f}"
    assert results["kaggle_reference_protocol"]["0"]["protocols"] == {"reference": REFERENCE.describe()}
    assert "the reference's own best: IoU 0.701" in result.stdout
    last = claims[1]
    for seed in ("0", "1"):
        drive = results["drive"][seed]
        assert drive["config"]["data"]["source"]["_target_"].endswith("DriveSource")
        assert 0 <= drive["test_clDice"] <= 1 and 0 <= drive["test_IoU_all"] <= 1
        assert results["kaggle"][seed]["seed"] == int(seed) and "test_clDice_all" in results["kaggle"][seed]
    assert "DRIVE test set" in result.stdout and result.stdout.count("| **mean** |") == 6
    again = run_main("benchmarks.quality", *args, cwd=REPO_ROOT, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing the completed run") == 2 and again.stdout.strip().splitlines()[-1] == last


def test_quality_names_a_missing_data_folder(tmp_path):
    result = run_main("benchmarks.quality", "--drive-root", str(tmp_path / "nowhere"), cwd=REPO_ROOT, timeout=120)
    assert result.returncode != 0 and f"--drive-root {tmp_path / 'nowhere'} is not a folder" in result.stderr


@pytest.mark.slow
@by_module("benchmarks.sweep_parallelism")
def test_sweep_parallelism_quick_times_both_local_launchers(tmp_path):
    out = tmp_path / "sweeps.json"
    result = run_main(
        "benchmarks.sweep_parallelism", "--quick", "--no-slurm", "--json", str(out), cwd=REPO_ROOT, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["wall_time_s"]) == {"basic (sequential)", "submitit_local"}
    ratio = results["ratio_to_sequential"]["submitit_local"]
    assert ratio > 0
    assert result.stdout.strip().splitlines()[-1] == f"parallel/sequential wall-time ratio: submitit_local {ratio:.2f}"


@pytest.mark.slow
@pytest.mark.xdist_group("drive_checkpoint")
def test_cross_dataset_quick_evaluates_both_models_at_both_scales_beside_the_human(
    tmp_path, drive_checkpoint, drive_root, stare_root
):
    """Both checkpoints given (the brief DRIVE model stands in for the Kaggle one: the table's plumbing is checked
    here, not its quality, and a training costs minutes); every evaluation is a real `retina-seg-eval`."""
    out, results_path = tmp_path / "runs", tmp_path / "cross.json"
    result = run_main(
        "benchmarks.cross_dataset",
        "--quick",
        "--drive-ckpt",
        str(drive_checkpoint),
        "--kaggle-ckpt",
        str(drive_checkpoint),
        "--drive-root",
        str(drive_root),
        "--stare-root",
        str(stare_root),
        "--out",
        str(out),
        "--json",
        str(results_path),
        cwd=REPO_ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(results_path.read_text())
    given = str(drive_checkpoint.resolve())
    assert results["checkpoints"] == {"kaggle": given, "drive": given}
    assert not (out / "kaggle").exists() and not (out / "drive").exists()  # nothing trained
    rows = results["rows"]
    assert len(rows) == 5 and list(rows)[-1] == "second observer (human)"
    train_diameter = torch.load(drive_checkpoint, weights_only=True)["retina_seg"]["fov_diameter"]
    for row, by_data in rows.items():
        for data, metrics in by_data.items():
            assert metrics["config"]["data"]["source"]["_target_"].endswith(
                {"drive": "DriveSource", "stare": "StareSource"}[data]
            )
            assert 0 < metrics["test_Dice"] < 1
            if row.startswith("second observer"):
                assert metrics["images"] == 2 and "test_AUC" not in metrics
            elif row.endswith("native scale"):
                assert metrics["scale"]["factors"] == [1.0, 1.0] and not metrics["config"]["scale_aware"]
    stare_aware = rows["recipe on DRIVE (native 565x584), scale-aware"]["stare"]["scale"]
    assert stare_aware["source"] == "checkpoint" and stare_aware["train_fov_diameter"] == train_diameter
    assert all(0.75 < factor < 0.9 for factor in stare_aware["factors"])  # STARE's FOV is about 650 px wide
    assert "| second observer (human) |" in result.stdout and "published F1 (Idiap bob.ip.binseg)" in result.stdout
    dice = [
        rows[f"recipe on DRIVE (native 565x584), {how}"]["stare"]["test_Dice"]
        for how in ("scale-aware", "native scale")
    ]
    assert result.stdout.strip().splitlines()[-1] == (
        f"STARE Dice of the DRIVE-trained model: scale-aware {dice[0]:.4f}, native scale {dice[1]:.4f} "
        "(published U-Net DRIVE->STARE F1 0.807)"
    )


def test_cross_dataset_names_a_missing_checkpoint(tmp_path):
    result = run_main(
        "benchmarks.cross_dataset", "--drive-ckpt", str(tmp_path / "none.ckpt"), cwd=REPO_ROOT, timeout=120
    )
    assert result.returncode != 0 and f"--drive-ckpt {tmp_path / 'none.ckpt'} is not a file" in result.stderr


@pytest.mark.slow
@by_module("benchmarks.search")
def test_search_quick_runs_the_grid_and_the_study_on_two_workers(tmp_path):
    out = tmp_path / "search.json"
    result = run_main("benchmarks.search", "--quick", "--json", str(out), cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    grid, study = results["grid"], results["search (TPE + median pruning)"]
    assert (grid["runs"], grid["completed"], study["runs"]) == (2, 2, 2)
    assert grid["cpu_minutes_to_grid_best"] <= grid["cpu_minutes"] and grid["idle_worker_minutes"] >= 0
    assert study["cpu_minutes"] > 0 and study["idle_worker_minutes"] >= 0
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"search CPU-minutes to the grid's best / grid CPU-minutes \(target <= 0.33\): ({NUMBER}|not reached)", last
    )


def test_rescaled_upsampling_quick_scores_every_way_back_to_full_size(tmp_path, tiny_checkpoint, drive_root):
    """The plumbing, not the quality (a tiny model): every way is scored on the same photographs and FOV, so each
    case's truth inside the FOV (TP + FN) is the same for all of them, and prediction's way is one of them."""
    data_root = drive_root.parent
    require((data_root / "CHASE_DB1" / "Image_01L.jpg").is_file(), f"CHASE_DB1 not found in {data_root}")
    out = tmp_path / "upsampling.json"
    result = run_main(
        "benchmarks.rescaled",
        *("--checkpoint", str(tiny_checkpoint), "--upsampling", "--quick"),
        *("--data-root", str(data_root), "--json", str(out)),
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    cases = {(row["set"], row["factor"]) for row in rows}
    assert cases == {("DRIVE", 2.0), ("CHASE_DB1", 1.0)}
    for case in cases:
        by_way = {row["upsampling"]: row for row in rows if (row["set"], row["factor"]) == case}
        assert set(by_way) == {*UPSAMPLINGS, "prediction's"}
        assert len({row["TP"] + row["FN"] for row in by_way.values()}) == 1
        ours = by_way.pop("prediction's")
        assert any((row["FP"], row["FN"]) == (ours["FP"], ours["FN"]) for row in by_way.values())
    assert result.stdout.strip().splitlines()[-1].startswith("FP/FN of prediction's upsampling, per set and factor:")
