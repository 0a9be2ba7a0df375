"""The report's study view on a real Optuna study (a journal file and a SQLite database) with completed, pruned,
failed and running trials and their run folders (tests/helpers/studies.py), no training; and a study.json whose
storage cannot be opened, refused naming the file."""

import json
import re
from pathlib import Path

import pytest

from retina_seg.exit_codes import EXIT_BAD_INPUT
from retina_seg.records.study_record import STUDY_JOURNAL, STUDY_STORAGE_ENV, read_study_record, storage_url
from tests.helpers.runs import run_main
from tests.helpers.studies import (
    BEST_TRIAL,
    PRUNED_TRIAL,
    PRUNED_VAL_IOU,
    STUDY_NAME,
    TRIALS,
    write_study,
)

HISTORY_PNG = f"study_history_{STUDY_NAME}.png"
MASKED_MYSQL = "mysql+pymysql://search:***@127.0.0.1:1/studies"


@pytest.fixture(scope="module", params=["journal", "sqlite"])
def sweep(request, tmp_path_factory) -> Path:
    sweep = tmp_path_factory.mktemp(request.param) / "sweep"
    write_study(sweep, None if request.param == "journal" else f"sqlite:///{sweep.parent / 'studies.db'}")
    result = run_main("retina_seg.report", str(sweep))
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep


def study_entry(sweep: Path) -> dict:
    [study] = json.loads((sweep / "report.json").read_text())["studies"]
    return study


def test_the_best_trial_is_optunas_with_its_params_and_run_folder(sweep):
    lr, loss, _, value = TRIALS[BEST_TRIAL]
    best = study_entry(sweep)["best"]
    assert best == {
        "number": BEST_TRIAL,
        "value": value,
        "params": {"lr": lr, "loss": loss},
        "run_dir": str(sweep / "2"),
    }
    markdown = (sweep / "report.md").read_text()
    assert markdown.startswith(f"## Study {STUDY_NAME}")
    assert (
        f"Best trial: {BEST_TRIAL}, val_IoU {value:.4f} (lr={lr!r}, loss={loss!r}), run folder {sweep / '2'}"
        in markdown
    )


def test_trials_are_counted_by_state(sweep):
    assert study_entry(sweep)["counts"] == {"complete": 4, "pruned": 1, "failed": 1, "running": 1, "waiting": 0}
    assert "7 of 8 trial(s): 4 complete, 1 pruned, 1 failed, 1 running, 0 waiting." in (sweep / "report.md").read_text()


def test_importances_cover_both_varying_params_and_sum_to_one(sweep):
    study = study_entry(sweep)
    importances = study["importances"]
    assert set(importances) == {"lr", "loss"} and study["importances_note"] is None
    assert sum(importances.values()) == pytest.approx(1.0)
    assert re.search(r"\| lr +\| +\d\.\d{4} \|", (sweep / "report.md").read_text())


def test_the_history_is_a_png_and_the_page_has_the_study_section(sweep):
    assert (sweep / HISTORY_PNG).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert study_entry(sweep)["history_png"] == HISTORY_PNG
    page = (sweep / "report.html").read_text()
    section = re.search(r'<section class="study">.*?</section>', page, flags=re.S).group(0)
    assert f"<h2>Study {STUDY_NAME}</h2>" in section and "4 complete, 1 pruned, 1 failed" in section
    assert re.search(r'<img class="study-history"[^>]*src="data:image/png;base64,', section)
    assert section.count("<tr>") == 1 + 2  # the importances' header and its two parameters
    assert page.index('id="answer"') < page.index('<section class="study">') < page.index('<table id="groups"')


def test_a_pruned_run_is_shown_as_pruned_with_its_val_values_and_no_test_values(sweep):
    rows = {row["Job id"]: row for row in json.loads((sweep / "report.json").read_text())["rows"]}
    pruned = rows[str(PRUNED_TRIAL)]
    assert pruned["status"] == "pruned" and pruned["val_IoU"] == PRUNED_VAL_IOU and pruned["test_IoU"] is None
    assert f"| {PRUNED_TRIAL} (pruned) " in (sweep / "report.md").read_text()
    assert not any(
        f"/{PRUNED_TRIAL}/metrics.json" in problem
        for problem in json.loads((sweep / "report.json").read_text())["problems"]
    )


def test_one_completed_trial_gives_no_importances_and_says_why(tmp_path):
    write_study(tmp_path / "sweep", None, trials=TRIALS[:1] + TRIALS[4:6])
    result = run_main("retina_seg.report", str(tmp_path / "sweep"))
    assert result.returncode == 0, result.stderr[-3000:]
    study = study_entry(tmp_path / "sweep")
    assert study["importances"] == {} and study["best"]["number"] == 0
    assert study["importances_note"] == "importances need at least 2 completed trials; the study has 1."
    assert "No parameter importances: importances need at least 2" in (tmp_path / "sweep" / "report.html").read_text()


def unopenable(sweep: Path, env: dict | None = None):
    result = run_main("retina_seg.report", str(sweep), env=env)
    assert result.returncode == EXIT_BAD_INPUT
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"retina-seg-report: error: {sweep / 'study.json'}: "), line
    assert not list(sweep.glob("report*")) and not list(sweep.glob("study_history*")), "nothing may be written"
    return line


def test_a_missing_journal_is_refused_naming_study_json_and_is_not_created(tmp_path):
    sweep = tmp_path / "sweep"
    write_study(sweep, None)
    (sweep / STUDY_JOURNAL).unlink()
    assert "optuna.journal does not exist" in unopenable(sweep)
    assert not (sweep / STUDY_JOURNAL).exists()


def test_a_masked_password_without_the_variable_is_refused_naming_it(tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    write_study(sweep, f"sqlite:///{tmp_path / 'studies.db'}", recorded_storage=MASKED_MYSQL)
    monkeypatch.delenv(STUDY_STORAGE_ENV, raising=False)
    assert f"password of storage {MASKED_MYSQL} is masked; set {STUDY_STORAGE_ENV}" in unopenable(sweep)


def test_a_database_that_refuses_the_connection_is_one_line_without_the_password(tmp_path):
    sweep = tmp_path / "sweep"
    write_study(sweep, f"sqlite:///{tmp_path / 'studies.db'}", recorded_storage=MASKED_MYSQL)
    line = unopenable(sweep, env={STUDY_STORAGE_ENV: "s3cret"})
    assert f"storage {MASKED_MYSQL} cannot be opened" in line and "s3cret" not in line


def test_a_missing_sqlite_database_is_refused_and_not_created(tmp_path):
    sweep = tmp_path / "sweep"
    write_study(sweep, f"sqlite:///{tmp_path / 'studies.db'}", recorded_storage=f"sqlite:///{tmp_path / 'gone.db'}")
    assert "the SQLite database" in unopenable(sweep) and not (tmp_path / "gone.db").exists()


def test_an_unknown_study_name_is_refused_naming_it(tmp_path):
    sweep = tmp_path / "sweep"
    record = write_study(sweep, None)
    record.write_text(record.read_text().replace(STUDY_NAME, "another"))
    assert "no study named 'another'" in unopenable(sweep)


@pytest.mark.parametrize("given", ["s3cret", "mysql+pymysql://search:s3cret@db.example:3306/studies"])
def test_the_masked_password_comes_from_the_variable_as_a_url_or_alone(tmp_path, monkeypatch, given):
    (tmp_path / "study.json").write_text(
        json.dumps(
            {"storage": MASKED_MYSQL, "study_name": "s", "direction": "minimize", "metric": "val_loss", "n_trials": 2}
        )
    )
    monkeypatch.setenv(STUDY_STORAGE_ENV, given)
    assert storage_url(read_study_record(tmp_path / "study.json")) == MASKED_MYSQL.replace("***", "s3cret")
