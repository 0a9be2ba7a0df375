"""Replicates on a real tiny sweep (2 learning rates x 2 seeds, basic launcher, Comet offline): the report's
groups, and the same groups read back from the Comet archives."""

import csv
import json
import zipfile
from pathlib import Path

import pytest

from retina_seg.records.groups import group_key
from retina_seg.records.run_folder import read_metrics
from retina_seg.reporting.comet_archives import read_archive_records
from tests.helpers.runs import run_main
from tests.helpers.sweeps import SWEEP_RUN, TABLE_COLUMNS, job_table_lines, multirun, run_dirs

COMET = ["logger=comet", "logger.comet.mode=offline"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    sweep_dir = tmp_path_factory.mktemp("seeds") / "seeds"
    result = multirun(sweep_dir, *SWEEP_RUN, *COMET, "optimizer.lr=1e-3,1e-4", "seed=0,1")
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir


def report(paths: list[str], out: Path, *options: str) -> dict:
    result = run_main("retina_seg.report", *options, *paths, "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


def test_report_shows_two_groups_of_two_ranked_by_val_iou(sweep, tmp_path):
    saved = report([str(sweep)], tmp_path)
    groups = saved["groups"]
    assert [g["n"] for g in groups] == [2, 2]
    assert sorted(g["settings"]["learning_rate"] for g in groups) == [1e-4, 1e-3]
    means = [g["summaries"]["val_IoU"]["mean"] for g in groups]
    assert means == sorted(means, reverse=True)
    for group in groups:
        ids = [r["Job id"] for r in group["runs"]]
        metrics = [read_metrics(sweep / job) for job in ids]
        assert {m["learning_rate"] for m in metrics} == {group["settings"]["learning_rate"]}
        assert sorted(m["config"]["seed"] for m in metrics) == [0, 1]
        assert group["group"] == group_key(metrics[0]["config"])
        assert group["summaries"]["test_IoU"]["mean"] == pytest.approx(sum(m["test_IoU"] for m in metrics) / 2)
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.index("## Groups") < markdown.index("| Job id ")
    header = [c.strip() for c in job_table_lines(markdown)[0].strip("|").split("|")]
    assert header == [*TABLE_COLUMNS, "seed"]
    with (tmp_path / "groups.csv").open() as handle:
        assert [row["group"] for row in csv.DictReader(handle)] == [g["group"] for g in groups]


def test_comet_archives_carry_sweep_group_and_seed_and_group_the_same_way(sweep, tmp_path):
    for run_dir in run_dirs(sweep):
        [archive] = sorted((run_dir / "comet").glob("*.zip"))
        with zipfile.ZipFile(archive) as bundle:
            tags = json.loads(bundle.read("experiment.json"))["tags"]
        [record] = read_archive_records(run_dir)
        config = read_metrics(run_dir)["config"]
        key = group_key(config)
        assert {"sweep:seeds", f"group:{key}", f"seed:{config['seed']}"} <= set(tags)
        assert (record["sweep"], record["group_key"], record["config"]["seed"]) == ("seeds", key, config["seed"])
    from_runs = report([str(sweep)], tmp_path / "runs")["groups"]
    from_comet = report([str(sweep)], tmp_path / "comet", "--comet")["groups"]
    assert [(g["group"], g["n"], g["settings"]) for g in from_comet] == [
        (g["group"], g["n"], g["settings"]) for g in from_runs
    ]
