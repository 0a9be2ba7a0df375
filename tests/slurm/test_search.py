"""The Optuna search on the real multi-node cluster: its workers are one SLURM job array, a pruner prunes, a node
that dies mid-study costs nothing (its worker is requeued and continues its trial), the same command again
launches nothing; and a study stored in a real database server (the cluster's MariaDB)."""

import json
import subprocess
import sys

import optuna
from optuna.trial import TrialState

from retina_seg.records.run_folder import read_epoch_table, read_metrics
from retina_seg.records.study_record import read_study_record
from retina_seg.reporting.study_view import load_study
from tests.helpers.slurm import ON_SLURM, poll, submitit_logs
from tests.helpers.sweeps import SWEEP_RUN, multirun, run_dirs

# Each worker takes a whole node's CPUs, so the two workers run on two nodes; 4 epochs give the pruner 4 reports.
SEARCH = [
    *SWEEP_RUN,
    *ON_SLURM,
    "hydra.launcher.cpus_per_task=2",
    "model.base_width=4",
    "trainer.max_epochs=6",
    "hydra/sweeper=optuna",
    "hydra.sweeper.sampler.seed=0",
    "hydra.sweeper.n_parallel=2",
    "optimizer.lr=tag(log, interval(1e-5, 3e-1))",
]
# The tiny runs' val_IoU barely moves in 6 epochs while their val_loss does: the median pruner compares losses.
# No trial is pruned before its third validation, so a trial seen with 2 epochs done is still training.
PRUNING = [
    "optimized_metric=val_loss",
    "optimized_mode=min",
    "hydra.sweeper.pruner.name=median",
    "hydra.sweeper.pruner.n_startup_trials=2",
    "hydra.sweeper.pruner.n_warmup_steps=2",
]


def trials_of(sweep_dir) -> list[optuna.trial.FrozenTrial]:
    return load_study(read_study_record(sweep_dir / "study.json")).get_trials()


def submitted_jobs(sweep_dir) -> set[str]:
    return {p.name for p in (sweep_dir / ".submitit").iterdir() if p.is_dir()}


def test_a_study_on_two_nodes_survives_a_lost_node_and_counts_every_trial_once(slurm_cluster, tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = [*SEARCH, *PRUNING, "hydra.sweeper.n_trials=8"]
    env = slurm_cluster.env
    with open(tmp_path / "launcher.log", "w") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "retina_seg.train", "-m", *command, f"hydra.sweep.dir={sweep_dir}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    node = None
    try:

        def a_trial_under_way():
            for metrics in sweep_dir.glob("[0-9]*/metrics.json"):
                record = json.loads(metrics.read_text())
                if record["status"] == "running" and record.get("epochs_done", 0) == 2:  # not yet prunable
                    return record
            return None

        node = poll(a_trial_under_way, 240, "a trial to train two epochs")["slurm_node"]
        slurm_cluster.crash_node(node)
        poll(lambda: "down" in slurm_cluster.node_state(node), 90, f"node {node} to be marked down")
        assert launcher.wait(timeout=500) == 0, (tmp_path / "launcher.log").read_text()[-3000:]
    finally:
        if launcher.poll() is None:
            launcher.kill()
        if node is not None:
            slurm_cluster.start_node(node)
    trials = trials_of(sweep_dir)
    assert [t.number for t in trials] == list(range(8))
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}, [t.state for t in trials]
    assert TrialState.PRUNED in {t.state for t in trials} and TrialState.COMPLETE in {t.state for t in trials}
    assert [d.name for d in run_dirs(sweep_dir)] == [str(n) for n in range(8)]
    resumed = []
    for trial, run_dir in zip(trials, run_dirs(sweep_dir)):
        record = read_metrics(run_dir)
        assert record["status"] == ("pruned" if trial.state == TrialState.PRUNED else "completed")
        epochs = [row["epoch"] for row in read_epoch_table(run_dir)]
        assert epochs == list(range(len(epochs)))  # nothing trained twice
        if "resumed_from_epoch" in record:
            resumed.append(record)
    assert len(resumed) == 1 and resumed[0]["slurm_node"] != node, resumed  # the lost node's trial, continued
    jobs = submitted_jobs(sweep_dir)
    logs = submitit_logs(sweep_dir)
    assert len({job.split("_")[0] for job in jobs}) == 1, jobs  # one job array of two workers
    assert "continuing trial" in logs

    again = multirun(sweep_dir, *command, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to launch" in again.stdout + again.stderr
    assert submitted_jobs(sweep_dir) == jobs
    assert len(trials_of(sweep_dir)) == 8


def test_a_study_in_a_database_server_is_shared_by_its_workers(slurm_cluster, tmp_path):
    url = slurm_cluster.study_database("retina_seg_study")
    sweep_dir = tmp_path / "sweep"
    user, password = url.split("//")[1].split("@")[0].split(":")
    masked = url.replace(f":{password}@", ":${oc.env:STUDY_DB_PASSWORD}@")
    result = multirun(
        sweep_dir,
        *SEARCH,
        "hydra.sweeper.n_trials=4",
        f"hydra.sweeper.storage='{masked}'",
        env={**slurm_cluster.env, "STUDY_DB_PASSWORD": password},
    )
    assert result.returncode == 0, result.stderr[-3000:] + submitit_logs(sweep_dir)[-3000:]
    written = (sweep_dir / "study.json").read_text()
    assert "mysql+pymysql" in written
    for path in (p for p in sweep_dir.rglob("*") if p.is_file()):  # submitit's pickles of the workers included
        assert password.encode() not in path.read_bytes(), path
    study = optuna.load_study(study_name=json.loads(written)["study_name"], storage=url)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 4
    # Both worker jobs ran and opened the study on the server (which of them asked for which trial is timing).
    assert sorted(p.name for p in (sweep_dir / ".workers").iterdir()) == ["0", "1"]
    assert {t.user_attrs.get("worker") for t in study.get_trials()} <= {0, 1}
    assert submitit_logs(sweep_dir).count("no trial left") == 2
