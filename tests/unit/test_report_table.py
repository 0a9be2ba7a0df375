"""The job-id table's ordering and cell formats, on rows built in memory."""

import json

import pytest

from retina_seg.reporting.runs import (
    COMPLETED,
    CORRUPT,
    FAILED,
    VALUE_KEYS,
    MetricsError,
    Run,
    check_metrics,
    duplicate_id_problems,
    run_from_metrics,
)
from retina_seg.reporting.table import COLUMNS, format_value, job_sort_key, sort_runs, to_csv, to_json, to_markdown


def test_job_ids_sort_naturally():
    ids = ["abc", "12_0", "10", "3_10", "9", "3_2", "3", "12_1_trial10", "12_1_trial2", "12_0_trial3"]
    assert sorted(ids, key=job_sort_key) == [
        "3",
        "3_2",
        "3_10",
        "9",
        "10",
        "12_0",
        "12_0_trial3",
        "12_1_trial2",
        "12_1_trial10",  # a search's trials by number, not as text
        "abc",
    ]


@pytest.mark.parametrize(
    "key, value, cell",
    [
        ("epochs", 30, "30"),
        ("batch_size", 8.0, "8"),
        ("learning_rate", 1e-4, "0.0001"),
        ("learning_rate", 5e-05, "5e-05"),
        ("learning_rate", 0.00123456, "0.001235"),
        ("val_IoU", 0.70149, "0.7015"),
        ("test_loss", 1.0, "1.0000"),
        ("test_IoU", None, "-"),
    ],
)
def test_cells_have_the_documented_format(key, value, cell):
    assert format_value(key, value) == cell


def completed(job_id: str, **values) -> Run:
    record = {
        "job_id": job_id,
        "status": COMPLETED,
        "epochs": 2,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "val_IoU": 0.5,
        "val_loss": 0.3,
        "test_IoU": 0.4,
        "test_loss": 0.35,
        **values,
    }
    return run_from_metrics(check_metrics(record), f"/runs/{job_id}", [], [], default_id=job_id)


def test_failed_run_shows_hyperparameters_only_and_diverged_scores_are_dashes():
    failed = completed("5", status=FAILED)
    assert [format_value(k, failed.values[k]) for k in VALUE_KEYS] == ["2", "4", "0.001", "-", "-", "-", "-"]
    assert completed("6", val_loss=float("nan")).values["val_loss"] is None


@pytest.mark.parametrize(
    "record, message",
    [
        ([1, 2], "expected a JSON object"),
        ({"status": "done"}, "status is 'done'"),
        ({"status": "completed", "val_IoU": "0.5"}, "val_IoU is '0.5'"),
        ({"status": "completed", "epochs": 2.5}, "epochs is 2.5, expected an integer"),
    ],
)
def test_unusable_records_name_the_key(record, message):
    with pytest.raises(MetricsError, match=message):
        check_metrics(record)


def test_markdown_csv_and_json_hold_the_same_rows_in_the_same_order():
    runs = sort_runs(
        [completed("10"), Run("9", CORRUPT, "/runs/9", problems=["/runs/9/metrics.json: corrupt"]), completed("a|b")]
    )
    problems = [p for run in runs for p in run.problems]
    markdown = to_markdown(runs, problems).splitlines()
    assert [cell.strip() for cell in markdown[0].split("|")[1:-1]] == list(COLUMNS)
    assert markdown[2].startswith("| 9 (corrupt) |") and markdown[2].count(" - ") == 7
    assert markdown[4].startswith(r"| a\|b ")
    assert markdown[-1] == "- /runs/9/metrics.json: corrupt"
    csv_lines = to_csv(runs).splitlines()
    assert csv_lines[0] == ",".join(COLUMNS) and csv_lines[1] == "9 (corrupt),-,-,-,-,-,-,-"
    report = json.loads(to_json(runs, problems))
    assert [row["Job id"] for row in report["rows"]] == ["9", "10", "a|b"]
    assert list(report["rows"][1]) == [*COLUMNS, "status"] and report["rows"][0]["val_IoU"] is None
    assert report["problems"] == problems


def test_a_job_id_in_two_folders_is_a_problem():
    again = completed("0")
    again.source = "/other-sweep/0"
    problems = duplicate_id_problems([completed("0"), completed("1"), again])
    assert problems == ["job id 0 appears in 2 places: /runs/0, /other-sweep/0"]
