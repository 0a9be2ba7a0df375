"""The speed benchmarks: each --quick mode runs as a user runs it and ends with its ratio line; the
turn-taking that makes their side-by-side numbers comparable. No time thresholds: timing here is noisy."""

import json
import re

import pytest

from benchmarks.common import run_in_turns
from benchmarks.efficiency import BF16_NOT_MEASURED
from benchmarks.latency import LARGE_SOURCES, STAGES
from benchmarks.rescaled import UPSAMPLINGS
from retina_seg.launch.resources import cpu_bf16_flags
from retina_seg.records.protocols import REFERENCE
from tests.helpers.environment import REPO_ROOT, require
from tests.helpers.runs import compose, run_benchmark, run_main

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
            # time_budget's runs take their thread count from a new interpreter's OMP_NUM_THREADS.
            runner = run_main if module == "benchmarks.time_budget" else run_benchmark
            result = runner(module, "--quick", "--json", str(out), cwd=REPO_ROOT, timeout=300)
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
    result = run_benchmark("benchmarks.throughput", "--fast-workers", "-1", cwd=REPO_ROOT, timeout=120)
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
    result = run_benchmark("benchmarks.quality", *args, cwd=REPO_ROOT, timeout=600)
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
    again = run_benchmark("benchmarks.quality", *args, cwd=REPO_ROOT, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing the completed run") == 2 and again.stdout.strip().splitlines()[-1] == last


def test_quality_names_a_missing_data_folder(tmp_path):
    result = run_benchmark("benchmarks.quality", "--drive-root", str(tmp_path / "nowhere"), cwd=REPO_ROOT, timeout=120)
    assert result.returncode != 0 and f"--drive-root {tmp_path / 'nowhere'} is not a folder" in result.stderr


@pytest.mark.slow
@by_module("benchmarks.sweep_parallelism")
def test_sweep_parallelism_quick_times_both_local_launchers(tmp_path):
    out = tmp_path / "sweeps.json"
    result = run_benchmark(
        "benchmarks.sweep_parallelism", "--quick", "--no-slurm", "--json", str(out), cwd=REPO_ROOT, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["wall_time_s"]) == {"basic (sequential)", "submitit_local"}
    ratio = results["ratio_to_sequential"]["submitit_local"]
    assert ratio > 0
    assert result.stdout.strip().splitlines()[-1] == f"parallel/sequential wall-time ratio: submitit_local {ratio:.2f}"


@pytest.mark.slow
@by_module("benchmarks.cross_dataset")
def test_cross_dataset_quick_trains_four_models_scores_held_out_sets_and_resumes(
    tmp_path, drive_root, stare_root, chase_db1_root
):
    """Every training a real `retina-seg-train experiment=cameras_cpu` (one tiny epoch), every score a real
    `retina-seg-eval`: the table's plumbing, not its quality."""
    out, results_path = tmp_path / "runs", tmp_path / "cross.json"
    args = [
        "--quick",
        *("--drive-root", str(drive_root), "--stare-root", str(stare_root), "--chase-db1-root", str(chase_db1_root)),
        *("--out", str(out), "--json", str(results_path)),
    ]
    result = run_benchmark("benchmarks.cross_dataset", *args, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(results_path.read_text())
    trainings = results["trainings"]
    assert {model: list(m["data_sources"]) for model, m in trainings.items()} == {
        "without_drive": ["stare", "chase_db1"],
        "without_stare": ["drive", "chase_db1"],
        "without_chase_db1": ["drive", "stare"],
        "drive_only": ["drive"],
    }
    sources = {"drive": "DriveSource", "stare": "StareSource", "chase_db1": "ChaseDb1Source"}
    for data, by_model in results["rows"].items():
        assert list(by_model)[-1] == "second_observer"
        for who, metrics in by_model.items():
            source = metrics["config"]["data"]["source"]
            assert source["_target_"].endswith(sources[data]) and 0 <= metrics["test_Dice"] <= 1
            held_out_split = "grouped" if data == "drive" and who != f"without_{data}" else "all"
            assert source["split"] == held_out_split
            if who == "second_observer":
                assert metrics["images"] == 2 and "test_AUC" not in metrics
            else:  # the threshold chosen on the training sources' pooled validation, the training's FOV diameter
                assert metrics["threshold"] == trainings[who]["threshold"]
                assert metrics["scale"]["train_fov_diameter"] == 128 and len(metrics["scale"]["factors"]) == 2
    assert list(results["rows"]["stare"]) == ["without_stare", "drive_only", "second_observer"]
    targets = {(t["model"], t["data"]): t for t in results["targets"]}
    assert {key: t["least"] for key, t in targets.items()} == {
        ("drive_only", "stare"): 0.78,
        ("drive_only", "chase_db1"): 0.75,
        ("without_stare", "stare"): 0.80,
        ("without_chase_db1", "chase_db1"): 0.78,
        ("drive_only", "drive"): 0.822,
    }
    for (model, data), target in targets.items():
        assert target["Dice"] == results["rows"][data][model]["test_Dice"]
        assert target["met"] == (target["Dice"] >= target["least"])
    assert "| second observer (human) | test, 2 |" in result.stdout and "| 0.7880 |" in result.stdout
    assert "| trained on DRIVE + STARE | all, 2 |" in result.stdout and "| 0.7790 |" in result.stdout
    left_out = [results["rows"][data][f"without_{data}"]["test_Dice"] for data in ("drive", "stare", "chase_db1")]
    last = result.stdout.strip().splitlines()[-1]
    assert last == (
        "leave-one-set-out Dice (trained on the other two): "
        f"DRIVE {left_out[0]:.4f}, STARE {left_out[1]:.4f}, CHASE_DB1 {left_out[2]:.4f}"
    )
    again = run_benchmark("benchmarks.cross_dataset", *args, cwd=REPO_ROOT, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing the completed run") == 4 and again.stdout.strip().splitlines()[-1] == last
    other = run_benchmark("benchmarks.cross_dataset", *args, "--budget-s", "60", cwd=REPO_ROOT, timeout=600)
    assert other.returncode == 1 and "reusing" not in other.stdout
    assert f"{(out / 'without_drive').resolve()} was trained with other overrides" in other.stderr
    assert "callbacks.time_budget.budget_s=60" in other.stderr


def test_cross_dataset_trains_the_recipe_with_one_set_left_out_and_the_extra_overrides(tmp_path):
    """The full table's training commands, composed as retina-seg-train composes them."""
    from benchmarks.cross_dataset import parse_args, training_overrides

    roots = [f"--{name}-root={tmp_path}" for name in ("drive", "stare", "chase-db1")]
    args = parse_args([*roots, "--budget-s", "2700", "optimizer.lr=1e-3"])
    without_stare = training_overrides("without_stare", tmp_path / "run", args)
    assert without_stare[-1] == f"hydra.run.dir={tmp_path / 'run'}"
    cfg = compose(without_stare[:-1], tmp_path / "run")
    assert list(cfg.data.source.sources) == ["drive", "chase_db1"]
    assert cfg.data.source.sources.chase_db1.root == str(tmp_path) and cfg.data.fov_diameter == 512
    assert cfg.callbacks.time_budget.budget_s == 2700 and cfg.trainer.max_time == "00:00:45:00"
    assert cfg.optimizer.lr == 1e-3 and cfg.augmentation.train.crop.height == 256
    drive_only = compose(training_overrides("drive_only", tmp_path / "run", args)[:-1], tmp_path / "run")
    assert list(drive_only.data.source.sources) == ["drive"]


@pytest.mark.parametrize(
    "argument, named",
    [
        (["--chase-db1-root", "nowhere"], "--chase-db1-root nowhere is not a folder"),
        (["--budget-s", "0"], "--budget-s must be > 0 seconds, got 0"),
    ],
)
def test_cross_dataset_names_a_bad_argument(argument, named, tmp_path):
    found = ["--drive-root", str(tmp_path), "--stare-root", str(tmp_path)]
    result = run_benchmark("benchmarks.cross_dataset", *found, *argument, cwd=REPO_ROOT, timeout=120)
    assert result.returncode != 0 and named in result.stderr


@pytest.mark.slow
@by_module("benchmarks.search")
def test_search_quick_runs_the_grid_and_the_study_on_two_workers(tmp_path):
    out = tmp_path / "search.json"
    result = run_benchmark("benchmarks.search", "--quick", "--json", str(out), cwd=REPO_ROOT, timeout=600)
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
    result = run_benchmark(
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
