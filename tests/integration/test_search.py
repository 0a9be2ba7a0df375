"""The Optuna search sweeper (hydra/sweeper=optuna, docs/search.md) on tiny synthetic runs: a study ends with
exactly n_trials trials and one run folder each, the same command again launches nothing, a raised n_trials
continues, a trial whose job died is failed and retried once, pruning leaves a pruned run folder, an sqlite
storage works, and bad input is refused with exit 2 before anything is launched."""

import json
import shutil
import socket
import subprocess
import time
import urllib.request

import optuna
import pytest
from optuna.trial import TrialState

from retina_seg.records.run_folder import read_epoch_table, read_metrics
from retina_seg.records.study_record import read_study_record
from retina_seg.reporting.comet_archives import read_archive_records
from retina_seg.reporting.study_view import load_study
from tests.helpers.environment import require
from tests.helpers.runs import folder_held_by_another_process
from tests.helpers.sweeps import SWEEP_RUN, file_mtimes, multirun, report_rows, run_dirs

SEARCH = [*SWEEP_RUN, "model.base_width=4", "test=false", "hydra/sweeper=optuna", "hydra.sweeper.sampler.seed=0"]
LR = "optimizer.lr=tag(log, interval(1e-4, 1e-2))"


def search(sweep_dir, *overrides, env=None, cwd=None):
    return multirun(sweep_dir, *SEARCH, LR, *overrides, env=env, cwd=cwd)


def study_of(sweep_dir) -> optuna.Study:
    """The study as the report opens it, from the sweep's study.json."""
    return load_study(read_study_record(sweep_dir / "study.json"))


def states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials()]


@pytest.fixture(scope="module")
def four_trials(tmp_path_factory):
    """A study of 4 trials with 2 workers (run one after the other by the basic launcher)."""
    sweep_dir = tmp_path_factory.mktemp("search") / "sweep"
    result = search(sweep_dir, "hydra.sweeper.n_trials=4", "hydra.sweeper.n_parallel=2")
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir


def test_study_ends_with_n_trials_one_run_folder_each(four_trials):
    study = study_of(four_trials)
    assert states(study) == ["COMPLETE"] * 4
    assert [d.name for d in run_dirs(four_trials)] == ["0", "1", "2", "3"]
    for trial, run_dir in zip(study.get_trials(), run_dirs(four_trials)):
        record = read_metrics(run_dir)
        assert record["status"] == "completed"
        assert record["learning_rate"] == pytest.approx(trial.params["optimizer.lr"])
        assert trial.value == pytest.approx(record["val_IoU"])  # the objective: optimized_metric, validation only
    assert len({t.params["optimizer.lr"] for t in study.get_trials()}) == 4
    recorded = json.loads((four_trials / "study.json").read_text())
    assert recorded["storage"] is None  # the sweep folder's own journal (records/study_record.py)
    assert (four_trials / "optuna.journal").is_file()
    assert (recorded["direction"], recorded["metric"], recorded["n_trials"]) == ("maximize", "val_IoU", 4)
    assert [row["Job id"] for row in report_rows(four_trials)] == ["0", "1", "2", "3"]
    (view,) = json.loads((four_trials / "report.json").read_text())["studies"]  # the report reads the real study
    best = max(study.get_trials(), key=lambda t: t.value)
    assert (view["best"]["number"], view["best"]["value"]) == (best.number, pytest.approx(best.value))
    assert view["best"]["run_dir"] == str(four_trials / str(best.number))
    assert view["counts"]["complete"] == 4 and list(view["importances"]) == ["optimizer.lr"]
    assert (four_trials / view["history_png"]).stat().st_size > 1000


def test_same_command_launches_nothing_and_raised_n_trials_continues(four_trials):
    before = [file_mtimes(d) for d in run_dirs(four_trials)]
    again = search(four_trials, "hydra.sweeper.n_trials=4", "hydra.sweeper.n_parallel=2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "has its 4 trial(s); nothing to launch" in again.stdout + again.stderr
    assert "launching" not in again.stdout + again.stderr
    assert [file_mtimes(d) for d in run_dirs(four_trials)] == before
    assert len(study_of(four_trials).trials) == 4

    raised = search(four_trials, "hydra.sweeper.n_trials=5", "hydra.sweeper.n_parallel=2")
    assert raised.returncode == 0, raised.stderr[-3000:]
    assert "1 trial(s) left; launching 1 worker(s)" in raised.stdout + raised.stderr
    assert states(study_of(four_trials)) == ["COMPLETE"] * 5
    assert [d.name for d in run_dirs(four_trials)] == ["0", "1", "2", "3", "4"]
    assert [file_mtimes(d) for d in run_dirs(four_trials)[:4]] == before


def test_trial_of_a_dead_job_is_failed_and_retried_once(tmp_path):
    """Two trials left running by dead jobs: a first attempt is failed and retried with its values; a retry that
    died too (attempt 1 of max_retries=1) is failed for good and counts toward n_trials."""
    sweep_dir = tmp_path / "sweep"
    first = search(sweep_dir, "hydra.sweeper.n_trials=1", "hydra.sweeper.max_retries=1")
    assert first.returncode == 0, first.stderr[-3000:]
    study = study_of(sweep_dir)
    dead = study.ask({"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})  # trial 1
    study.enqueue_trial({"optimizer.lr": 2e-3}, user_attrs={"attempt": 1, "retry_of": 0})
    dead_retry = study.ask({"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})  # 2

    result = search(sweep_dir, "hydra.sweeper.n_trials=3", "hydra.sweeper.max_retries=1")
    output = result.stdout + result.stderr
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trial 1 was running when its job died: failed, retry 1 of 1 enqueued" in output
    assert "trial 2 was running when its job died: failed, no retry left" in output
    trials = study_of(sweep_dir).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "FAIL", "COMPLETE"]
    retry = trials[3]
    assert retry.params == dead.params
    assert (retry.user_attrs["repeats"], retry.user_attrs["retry_of"], retry.user_attrs["attempt"]) == (1, 1, 1)
    assert dead_retry.number == 2 and read_metrics(sweep_dir / "3")["status"] == "completed"
    assert [d.name for d in run_dirs(sweep_dir)] == ["0", "3"]


def test_a_running_trial_whose_folder_is_held_is_left_to_its_worker(tmp_path):
    """A worker of an earlier launch may outlive its sweeper (a SLURM array keeps running): the same command
    again must not fail its trial, nor train its values a second time."""
    sweep_dir = tmp_path / "sweep"
    first = search(sweep_dir, "hydra.sweeper.n_trials=1")
    assert first.returncode == 0, first.stderr[-3000:]
    study_of(sweep_dir).ask({"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})  # 1
    (sweep_dir / "1").mkdir()
    with folder_held_by_another_process(sweep_dir / "1", "earlier-worker"):
        again = search(sweep_dir, "hydra.sweeper.n_trials=2")
    output = again.stdout + again.stderr
    assert again.returncode == 0, again.stderr[-3000:]
    assert "trial 1 is still training (its run folder is held): left to its worker" in output
    assert "has its 2 trial(s); nothing to launch" in output
    assert [t.state.name for t in study_of(sweep_dir).get_trials()] == ["COMPLETE", "RUNNING"]


def test_pruned_trial_stops_at_once_and_keeps_its_run_folder(tmp_path):
    """A threshold no IoU reaches: the trial is pruned at its first validation (epoch 0 of 3)."""
    sweep_dir = tmp_path / "sweep"
    result = search(
        sweep_dir,
        "trainer.max_epochs=3",
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.pruner.name=threshold",
        "hydra.sweeper.pruner.lower=1.5",
        "logger=comet",
        "logger.comet.mode=offline",
        env={"COMET_API_KEY": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (trial,) = study_of(sweep_dir).get_trials()
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [0]
    run_dir = sweep_dir / "0"
    record = read_metrics(run_dir)
    assert (record["status"], record["pruned_at_epoch"], record["epochs_done"]) == ("pruned", 0, 1)
    assert [row["epoch"] for row in read_epoch_table(run_dir)] == [0]
    assert (run_dir / "checkpoints" / "last.ckpt").exists() and (run_dir / "checkpoints" / "best.ckpt").exists()
    assert "test_IoU" not in record or record["test_IoU"] is None
    (row,) = report_rows(sweep_dir)
    assert (row["Job id"], row["status"]) == ("0", "pruned")
    (comet,) = read_archive_records(sweep_dir)  # Comet's record of the run says pruned too
    assert (comet["job_id"], comet["status"]) == ("0", "pruned")
    assert row["val_IoU"] == pytest.approx(record["val_IoU"], abs=1e-3)


def test_sqlite_storage_and_a_study_name_taken_by_another_space(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    first = search(tmp_path / "a", "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={storage}")
    assert first.returncode == 0, first.stderr[-3000:]
    recorded = json.loads((tmp_path / "a" / "study.json").read_text())
    assert (recorded["storage"], recorded["study_name"]) == (storage, "a")
    assert states(study_of(tmp_path / "a")) == ["COMPLETE"] * 2

    other = multirun(
        tmp_path / "b",
        *SEARCH,
        "optimizer.lr=interval(1e-3, 1e-2)",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=a",
    )
    assert other.returncode == 2
    assert "study 'a'" in other.stderr and "exists with another search space" in other.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["optimizer.lrr=interval(1e-4, 1e-2)"], "optimizer.lrr"),
        (["loss=choice(bce, no_such_loss)"], "no_such_loss"),
        (["optimizer.lr=interval(1e-2, 1e-4)"], "interval(0.01, 0.0001) is empty or reversed"),
        (["optimizer.lr=interval(1e-3, 1e-3)"], "interval(0.001, 0.001) is empty or reversed"),
        (["optimizer.lr=tag(log, interval(0, 1e-2))"], "log needs bounds above 0"),
        ([LR, "hydra.sweeper.sampler.name=bayes"], "hydra.sweeper.sampler.name=bayes"),
        ([LR, "hydra.sweeper.pruner.name=asha"], "hydra.sweeper.pruner.name=asha"),
        ([LR, "hydra.sweeper.sampler.n_startup_trials=-1"], "hydra.sweeper.sampler.n_startup_trials=-1"),
        ([LR, "optimized_mode=maximize"], "optimized_mode=maximize"),
        ([LR, "hydra.sweeper.storage=sqlite:////no/such/folder/s.db"], "sqlite:////no/such/folder/s.db"),
        ([LR, "hydra.sweeper.storage=mysql+pymysql://lab:hunter2@db/studies"], "holds a password as written"),
        ([LR, "hydra/launcher=slurm", "hydra.launcher.tasks_per_node=2"], "hydra.launcher.tasks_per_node=2"),
    ],
)
def test_bad_input_exits_2_naming_it_and_leaves_no_sweep_folder(tmp_path, overrides, named):
    sweep_dir = tmp_path / "sweep"
    result = multirun(sweep_dir, *SEARCH, *overrides)
    assert result.returncode == 2, result.stderr[-3000:]
    assert named in result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert not sweep_dir.exists()


@pytest.mark.slow
def test_two_local_workers_run_a_study_in_parallel_processes(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = search(sweep_dir, "hydra/launcher=local", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_parallel=2")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = study_of(sweep_dir).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    assert [d.name for d in run_dirs(sweep_dir)] == ["0", "1", "2", "3"]
    assert sorted(p.name for p in (sweep_dir / ".workers").iterdir()) == ["0", "1"]


def test_a_second_study_into_a_sweep_folder_in_use_is_refused(tmp_path):
    """As two sweeps are: the folder's lock is held by a live process (here a stand-in), so the search exits 1
    naming the holder and creates no study."""
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    with folder_held_by_another_process(sweep_dir, "other-study") as holder:
        refused = search(sweep_dir, "hydra.sweeper.n_trials=2")
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert f"{sweep_dir.resolve()} is in use by job other-study (pid {holder}" in refused.stderr
    assert sorted(p.name for p in sweep_dir.iterdir()) == [".lock"]  # no journal, study.json or run folder


@pytest.mark.slow
def test_optuna_dashboard_serves_the_study_from_its_journal(four_trials):
    """The command docs/search.md gives (the `dashboard` extra): the real server, asked over HTTP."""
    require(
        shutil.which("optuna-dashboard") is not None, "optuna-dashboard not installed (pip install -e '.[dashboard]')"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["optuna-dashboard", str(four_trials / "optuna.journal"), "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/0", timeout=5) as answer:
                    study = json.load(answer)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
                time.sleep(0.5)
    finally:
        server.kill()
        server.wait()
    assert study["name"] == "sweep" and study["directions"] == ["maximize"]
    assert [t["state"] for t in study["trials"]] == ["Complete"] * len(study_of(four_trials).trials)


def test_a_storage_from_the_environment_is_recorded_as_what_it_resolves_to(tmp_path):
    """The whole URL as ${oc.env:...}: study.json names the database (the report opens it), not the variable; a
    relative journal path is recorded absolute."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    result = search(
        tmp_path / "a", "hydra.sweeper.n_trials=1", "hydra.sweeper.storage=${oc.env:STUDY_URL}", env={"STUDY_URL": url}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "a" / "study.json").read_text())["storage"] == url
    assert [t.state.name for t in study_of(tmp_path / "a").get_trials()] == ["COMPLETE"]

    journal = search(tmp_path / "b", "hydra.sweeper.n_trials=1", "hydra.sweeper.storage=b.journal", cwd=tmp_path)
    assert journal.returncode == 0, journal.stderr[-3000:]
    assert json.loads((tmp_path / "b" / "study.json").read_text())["storage"] == str(tmp_path / "b.journal")
