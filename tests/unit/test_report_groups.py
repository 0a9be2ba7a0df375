"""Replicates gathered into groups and summarised, on run records built in memory."""

import csv
import io
import json

import pytest

from retina_seg.records.groups import group_key
from retina_seg.reporting.group_table import groups_csv, groups_json, groups_markdown
from retina_seg.reporting.replicates import group_runs, job_table_keys
from retina_seg.reporting.runs import COMPLETED, FAILED, RUNNING, check_metrics, run_from_metrics
from retina_seg.reporting.table import COLUMNS, to_json, to_markdown
from tests.helpers.sweeps import TABLE_COLUMNS


def record(job_id: str, lr: float, seed: int, val_iou: float = 0.5, status: str = COMPLETED, **extra) -> dict:
    config = {
        "seed": seed,
        "optimizer": {"lr": lr},
        "data": {"batch_size": 4, "split_seed": 0},
        "paths": {"output_dir": f"/sweep/{job_id}"},
        "trainer": {"max_epochs": 2, "default_root_dir": f"/sweep/{job_id}"},
        "callbacks": {"best_checkpoint": {"dirpath": f"/sweep/{job_id}/checkpoints"}},
        "resume": "auto",
        "task_name": "seeds",
        **extra.pop("config", {}),
    }
    values = {"epochs": 2, "batch_size": 4, "learning_rate": lr, "val_loss": 0.3, "test_IoU": val_iou - 0.1}
    return {"job_id": job_id, "status": status, **values, "val_IoU": val_iou, "config": config, **extra}


def run(*args, **kwargs):
    metrics = record(*args, **kwargs)
    return run_from_metrics(check_metrics(metrics), f"/sweep/{metrics['job_id']}", [], [], default_id="x")


def test_runs_differing_in_seed_and_bookkeeping_only_form_one_group_ranked_by_val_iou():
    runs = [run("0", 1e-3, 0, 0.60), run("1", 1e-3, 1, 0.64), run("2", 1e-4, 0, 0.70), run("3", 1e-4, 1, 0.72)]
    groups = group_runs(runs)
    assert [[r.job_id for r in g.runs] for g in groups] == [["2", "3"], ["0", "1"]]  # best mean val_IoU first
    assert [g.settings for g in groups] == [{"optimizer.lr": 1e-4}, {"optimizer.lr": 1e-3}]
    best = groups[0].summaries["val_IoU"]
    assert (best.n, best.mean, best.min, best.max) == (2, pytest.approx(0.71), 0.70, 0.72)
    assert best.std == pytest.approx(0.0141421, abs=1e-6)  # the sample std of two values
    assert groups[0].key == group_key(record("9", 1e-4, 5)["config"])  # the key tracking logs for such a run


def test_the_split_seed_that_follows_the_seed_is_a_replicate_key_too():
    """On the data sets on disk data.source.split_seed is ${seed}: another seed, another validation split."""
    runs = [
        run(str(seed), 1e-3, seed, config={"data": {"batch_size": 4, "source": {"split_seed": seed}}})
        for seed in (0, 1)
    ]
    assert [len(g.runs) for g in group_runs(runs)] == [2]
    assert [len(g.runs) for g in group_runs(runs, ["seed"])] == [1, 1]


def test_a_min_objective_ranks_the_lowest_first():
    objective = {"metric": "val_loss", "mode": "min"}
    runs = [
        run("0", 1e-3, 0, objective={**objective, "value": 0.2}),
        run("1", 1e-4, 0, objective={**objective, "value": 0.1}),
    ]
    assert [g.runs[0].job_id for g in group_runs(runs)] == ["1", "0"]


def test_replicate_keys_named_by_the_user_join_groups():
    runs = [run("0", 1e-3, 0), run("1", 1e-3, 1, config={"data": {"batch_size": 4, "split_seed": 1}})]
    assert len(group_runs(runs)) == 2
    assert len(group_runs(runs, ("seed", "data.split_seed"))) == 1


def test_one_run_has_no_spread_and_unfinished_runs_are_counted_not_averaged():
    runs = [
        run("0", 1e-3, 0, 0.6),
        run("1", 1e-3, 1, 0.9, status=FAILED),
        run("2", 1e-3, 2, 0.9, status=RUNNING),
        run("3", 1e-4, 0, 0.5, status=FAILED),
    ]
    alone, only_failed = group_runs(runs)
    assert alone.n == 1 and alone.summaries["val_IoU"].std is None and alone.summaries["val_IoU"].mean == 0.6
    assert alone.not_completed == {"failed": 1, "running": 1}
    assert only_failed.n == 0 and only_failed.summaries == {} and only_failed.objective is None
    lines = groups_markdown([alone, only_failed], []).splitlines()
    alone_row = next(line for line in lines if line.startswith(f"| {alone.key}"))
    assert " 0.6000 |" in alone_row and "±" not in alone_row and "1 failed, 1 running" in alone_row
    csv_row = next(csv.DictReader(io.StringIO(groups_csv([alone, only_failed]))))
    assert (csv_row["val_IoU_mean"], csv_row["val_IoU_std"], csv_row["not_completed"]) == (
        "0.6",
        "",
        "1 failed, 1 running",
    )
    assert groups_json([alone])[0]["summaries"]["val_IoU"]["std"] is None


def test_job_table_keeps_its_eight_columns_first_then_the_varying_keys():
    runs = [run("0", 1e-3, 0), run("1", 1e-3, 1, config={"model": {"depth": 3}})]
    varying = job_table_keys(runs)
    assert varying == ["model.depth", "seed"]  # lr does not vary; paths and output folders are not settings
    header = to_markdown(runs, [], varying=varying).splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == [*TABLE_COLUMNS, "model.depth", "seed"]
    assert list(COLUMNS) == TABLE_COLUMNS
    report = json.loads(to_json(runs, [], varying=varying, groups=groups_json(group_runs(runs))))
    assert report["rows"][1]["seed"] == 1 and report["rows"][0]["model.depth"] is None
    assert [g["n"] for g in report["groups"]] == [1, 1]


def test_learning_rate_varies_under_its_table_name_only():
    runs = [run("0", 1e-3, 0), run("1", 1e-4, 0)]
    assert job_table_keys(runs) == []
    assert "learning_rate" in groups_markdown(group_runs(runs), []).splitlines()[4]


def test_a_run_without_loggers_is_a_replicate_of_one_with_them():
    """logger=none leaves an empty logger section: bookkeeping like the loggers it would hold."""
    assert group_key({"seed": 0, "logger": {}}) == group_key({"seed": 1, "logger": {"csv": {"save_dir": "/x"}}})
