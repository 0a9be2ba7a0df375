"""Comet tracking on real runs: offline archives read back, sweeps, DDP, secrets, and no network.

Every archive is opened and read back: a Comet experiment that silently writes nothing must fail here.
"""

import json
import socket
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from retina_seg.records.run_folder import HEADLINE_KEYS, read_epoch_table, read_metrics
from retina_seg.report import main as report_main
from retina_seg.reporting.comet_archives import read_archive, read_archive_records
from retina_seg.training.pipeline import train
from tests.helpers.runs import TINY_RUN, compose, run_cli

FAKE_KEY = f"retinaSegFakeCometKey{uuid.uuid4().hex}"
COMET = ["logger=comet", "trainer.enable_progress_bar=false"]
WITHOUT_KEY = {"COMET_API_KEY": ""}


def archives(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "comet").glob("*.zip"))


def closed_port_url() -> str:
    """A local address where nothing listens: connections are refused at once, like a machine offline."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/clientlib/"


def assert_secret_absent(secret: str, folder: Path, output: str) -> None:
    """Every byte of every file (zip members decompressed, checkpoints included) and the printed output."""
    assert secret not in output
    needle = secret.encode()
    for path in (p for p in folder.rglob("*") if p.is_file()):
        assert needle not in path.read_bytes(), path
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as bundle:
                for member in bundle.namelist():
                    assert needle not in bundle.read(member), f"{path}:{member}"


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    """One CLI run on 2 CPU processes (DDP), forced offline while a recognisable fake API key is in the
    environment of both ranks."""
    run_dir = tmp_path_factory.mktemp("comet_run")
    result = run_cli(
        "retina_seg.train",
        *TINY_RUN,
        *COMET,
        "logger.comet.mode=offline",
        "callbacks.comet_overlays.every_n_epochs=1",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        f"hydra.run.dir={run_dir}",
        env={"COMET_API_KEY": FAKE_KEY},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result.stdout + result.stderr


@pytest.mark.slow
def test_offline_archive_holds_config_epochs_test_metrics_and_images(offline_run):
    run_dir, output = offline_run
    [archive] = archives(run_dir)
    metrics = read_metrics(run_dir)
    with zipfile.ZipFile(archive) as bundle:
        assert {"experiment.json", "messages.json"} <= set(bundle.namelist())
        experiment_json = json.loads(bundle.read("experiment.json"))
        pictures = {name: bundle.read(name) for name in bundle.namelist() if name.startswith("tmp")}
    assert {"model:unet", "data:synthetic", "launcher:basic", f"git:{metrics['git_commit'][:12]}"} <= set(
        experiment_json["tags"]
    )
    experiment = read_archive(archive)
    assert experiment.others["Name"] == metrics["job_id"]
    assert experiment.parameters["trainer.max_epochs"] == 2 and experiment.parameters["optimizer.lr"] == 1e-4
    assert experiment.parameters["data.source.height"] == 64 and experiment.parameters["logger.comet.mode"] == "offline"
    rows = read_epoch_table(run_dir)
    for row in rows:  # every epoch, with the epoch as step, equal to the run folder's epochs.csv
        logged = experiment.steps[row["epoch"]]
        for key in ("val_IoU", "val_loss", "train_loss"):
            assert logged[key] == pytest.approx(row[key]), (row["epoch"], key)
    final = experiment.steps[len(rows)]
    for key in ("val_IoU", "val_loss", "test_IoU", "test_loss", "test_Dice", "test_AUC"):
        assert final[key] == pytest.approx(metrics[key]), key
    assert experiment.others["best_checkpoint"] == metrics["best_checkpoint"]
    assert experiment.others["status"] == "completed"
    assert len(pictures) == 2 + 1  # per epoch one overlay (rank 0 validates 1 of the 2 images), the plot
    assert f"Comet: offline (logger.comet.mode=offline); archive at the end of the run: {archive}" in output
    assert f"comet upload {archive}" in output
    assert "import comet_ml before" not in output  # comet_ml's late-import warning


@pytest.mark.slow
def test_api_key_never_reaches_disk_or_output(offline_run):
    run_dir, output = offline_run
    assert_secret_absent(FAKE_KEY, run_dir, output)


@pytest.mark.slow
def test_sweep_without_key_leaves_one_archive_per_run_that_rebuilds_the_table(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "retina_seg.train",
        "-m",
        *TINY_RUN,
        *COMET,
        "optimizer.lr=1e-4,3e-4",
        f"hydra.sweep.dir={sweep}",
        env=WITHOUT_KEY,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (result.stdout + result.stderr).count("Comet: offline (no COMET_API_KEY in the environment)") == 2
    records = {r["job_id"]: r for r in read_archive_records(sweep)}
    assert sorted(records) == ["0", "1"]
    with zipfile.ZipFile(records["1"]["archive"]) as bundle:
        assert "sweep:sweep" in json.loads(bundle.read("experiment.json"))["tags"]  # the sweep folder's name
    for job in ("0", "1"):
        assert len(archives(sweep / job)) == 1
        metrics, record = read_metrics(sweep / job), records[job]
        assert Path(record["archive"]).parent == sweep / job / "comet"
        assert [record[k] for k in HEADLINE_KEYS] == pytest.approx([metrics[k] for k in HEADLINE_KEYS])
        # Only its own epochs: a second run in the same process must not write into the first archive.
        assert [h["epoch"] for h in record["history"]] == [0, 1]
        assert [h["val_loss"] for h in record["history"]] == pytest.approx(
            [r["val_loss"] for r in read_epoch_table(sweep / job)]
        )
    report = run_cli("retina_seg.report", "--comet", str(sweep), "--out", str(tmp_path / "from_comet"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert report_main([str(sweep), "--out", str(tmp_path / "from_runs")]) == 0
    from_comet, from_runs = ((tmp_path / name / "report.csv").read_text() for name in ("from_comet", "from_runs"))
    assert from_comet == from_runs and from_comet.count("\n") == 3  # the same job-id table, header + 2 rows


@pytest.mark.slow
def test_ddp_on_cpu_gives_one_experiment(offline_run):
    run_dir, output = offline_run
    assert len(archives(run_dir)) == 1 and output.count("Comet: offline") == 1  # rank 0 only
    [record] = read_archive_records(run_dir)
    assert record["job_id"] == read_metrics(run_dir)["job_id"] and record["status"] == "completed"


class NetworkWatch:
    """A process-wide audit hook (installed once) that, while on, refuses and records every IP connection
    and name lookup: a real socket attempt anywhere in the process shows up here."""

    LOOKUPS = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr")
    attempts: list = []
    on = False
    installed = False

    @classmethod
    def hook(cls, event: str, args: tuple) -> None:
        if not cls.on:
            return
        if event == "socket.connect" and args[0].family in (socket.AF_INET, socket.AF_INET6):
            cls.attempts.append((event, args[1]))
            raise ConnectionRefusedError(f"test refuses network connections ({args[1]})")
        if event in cls.LOOKUPS:
            cls.attempts.append((event, args[0]))
            raise socket.gaierror(f"test refuses name lookups ({args[0]})")


@pytest.fixture
def no_network():
    if not NetworkWatch.installed:
        sys.addaudithook(NetworkWatch.hook)
        NetworkWatch.installed = True
    NetworkWatch.on = True
    with pytest.raises(OSError):  # the watch itself works: a lookup is refused and recorded
        socket.getaddrinfo("www.comet.com", 443)
    assert NetworkWatch.attempts == [("socket.getaddrinfo", "www.comet.com")]
    NetworkWatch.attempts.clear()
    try:
        yield NetworkWatch.attempts
    finally:
        NetworkWatch.on = False


def test_offline_run_and_its_resumption_attempt_no_connection(tmp_path, monkeypatch, no_network):
    """Also: the resumed run's second archive continues the first, read back as one record."""
    monkeypatch.delenv("COMET_API_KEY", raising=False)
    overrides = [*TINY_RUN, "logger=many", "trainer.enable_progress_bar=false", "trainer.max_epochs=1"]
    train(compose(overrides, tmp_path), tmp_path, "7")
    record = train(compose([*overrides, "trainer.max_epochs=2"], tmp_path), tmp_path, "7")  # from last.ckpt
    assert no_network == []
    assert len(archives(tmp_path)) == 2 and record["resumed_from_epoch"] == 1
    [comet_record] = read_archive_records(tmp_path)
    assert comet_record["job_id"] == "7" and comet_record["status"] == "completed"
    assert [h["epoch"] for h in comet_record["history"]] == [0, 1]
    assert comet_record["test_IoU"] == pytest.approx(record["test_IoU"])
    assert (tmp_path / "logs" / "metrics.csv").is_file()  # logger=many: Comet and the CSV log


def test_unreachable_server_fails_fast_and_keeps_the_run_folder(tmp_path, monkeypatch, capfd, caplog):
    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    monkeypatch.setenv("COMET_URL_OVERRIDE", closed_port_url())
    started = time.monotonic()
    with pytest.raises(Exception, match="cannot reach the Comet server"):
        train(compose([*TINY_RUN, *COMET, "logger.comet.offline_fallback=false"], tmp_path), tmp_path, "0")
    assert time.monotonic() - started < 30
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "failed" and "offline_fallback=true" in metrics["error"]
    assert_secret_absent(FAKE_KEY, tmp_path, "".join(capfd.readouterr()) + caplog.text)


def test_unreachable_server_falls_back_to_offline_when_allowed(tmp_path, monkeypatch, capfd, caplog):
    monkeypatch.setenv("COMET_API_KEY", FAKE_KEY)
    monkeypatch.setenv("COMET_URL_OVERRIDE", closed_port_url())
    record = train(compose([*TINY_RUN, *COMET, "trainer.max_epochs=1"], tmp_path), tmp_path, "3")
    [comet_record] = read_archive_records(tmp_path)
    assert comet_record["job_id"] == "3" and comet_record["test_IoU"] == pytest.approx(record["test_IoU"])
    output = "".join(capfd.readouterr()) + caplog.text
    assert "continuing offline (logger.comet.offline_fallback=true)" in output
    assert_secret_absent(FAKE_KEY, tmp_path, output)
