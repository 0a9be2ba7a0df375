"""End-to-end training runs on real code: the run folder contract, eval parity, resumption, bad input."""

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from hydra._internal.hydra import Hydra
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from retina_seg.exit_codes import EXIT_BAD_INPUT
from retina_seg.records.objective import VALIDATION_METRICS, VALIDATION_ONLY
from retina_seg.records.run_folder import HEADLINE_KEYS, read_epoch_table, read_metrics, read_test_images
from retina_seg.reporting.runs import read_run
from retina_seg.training.pipeline import train
from retina_seg.training.run_config import train_config
from tests.helpers.runs import TINY_NET, TINY_RUN, compose, run_main


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    record = train(compose([*TINY_RUN, "module.flip_tta=true"], out), out, "0")
    return out, record


def test_run_folder_contract(finished_run):
    out, record = finished_run
    metrics = read_metrics(out)
    assert list(metrics)[: len(HEADLINE_KEYS)] == list(HEADLINE_KEYS)
    assert metrics["status"] == "completed" and metrics["job_id"] == "0"
    assert (metrics["epochs"], metrics["batch_size"], metrics["learning_rate"]) == (2, 2, 1e-4)
    for key in (
        "val_IoU",
        "val_loss",
        "test_IoU",
        "test_loss",
        "test_Dice",
        "test_AUC",
        "test_IoU_all",
        "test_clDice",
        "test_clDice_all",
    ):
        assert isinstance(metrics[key], float), key
    assert 0 < metrics["test_clDice"] <= 1
    assert 0 <= metrics["test_IoU"] <= metrics["test_Dice"] <= 1  # Dice >= IoU always
    assert 0 < metrics["threshold"] < 1 and metrics["best_epoch"] in (0, 1)
    # Predictions outside the FOV are zeroed and synthetic vessels lie inside it: all-pixel IoU = in-FOV IoU,
    # while accuracy differs (the black border adds true negatives).
    assert metrics["test_IoU_all"] == pytest.approx(metrics["test_IoU"])
    assert metrics["test_accuracy_all"] > metrics["test_accuracy"]
    assert metrics["wall_time_s"] > 0 and metrics["config"]["trainer"]["max_epochs"] == 2
    rows = read_epoch_table(out)
    assert [r["epoch"] for r in rows] == [0, 1]
    assert all(r["train_loss"] > 0 and 0 <= r["val_IoU"] <= 1 for r in rows)
    assert Image.open(out / "progress.png").size[0] > 100
    best = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["retina_seg"]["threshold"] == pytest.approx(metrics["threshold"])
    assert best["retina_seg"]["model"]["_target_"] == "retina_seg.models.unet.UNet"
    assert best["retina_seg"]["flip_tta"] is True
    assert (out / "checkpoints" / "last.ckpt").exists()


def test_a_run_records_its_objective_on_validation(finished_run):
    out, record = finished_run
    metrics = read_metrics(out)
    assert metrics["objective"] == {"metric": "val_IoU", "mode": "max", "value": metrics["val_IoU"]}
    assert {key for key in metrics if key.startswith("val_")} == set(VALIDATION_METRICS)  # every one can be chosen


def test_a_run_writes_each_test_images_scores(finished_run):
    out, record = finished_run
    datamodule = instantiate(OmegaConf.create(record["config"]).data, _convert_="object")
    datamodule.setup("test")
    rows = read_test_images(out)
    assert [(row["image"], row["protocol"]) for row in rows] == [(s.name, "strict") for s in datamodule.splits.test]
    ious = [row["IoU"] for row in rows]
    assert len(set(ious)) == len(ious) == 2  # each image's own score, not the split's repeated
    assert min(ious) <= sum(ious) / len(ious) <= max(ious)
    assert all(0 <= row["IoU"] <= row["Dice"] <= 1 and 0 <= row["clDice"] <= 1 for row in rows)


def test_a_sweep_gets_the_validation_objective_not_a_test_score(tmp_path, monkeypatch):
    """What the task function returns is what a sweeper optimises: here a validation loss, to minimise. Hydra's
    multirun hands back the sweeper's job returns (the sweeper's own class is re-imported by Hydra's plugin scan)."""
    returned = []
    multirun = Hydra.multirun

    def recording_multirun(self, *args, **kwargs):
        batches = multirun(self, *args, **kwargs)
        returned.extend(job.return_value for batch in batches for job in batch)
        return batches

    monkeypatch.setattr(Hydra, "multirun", recording_multirun)
    args = [*TINY_RUN, "trainer.max_epochs=1", "optimized_metric=val_loss", "optimized_mode=min"]
    result = run_main("retina_seg.train", "-m", *args, f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(tmp_path / "0")
    assert returned == [metrics["val_loss"]] and metrics["val_loss"] not in (metrics["test_loss"], metrics["test_IoU"])
    assert metrics["objective"] == {"metric": "val_loss", "mode": "min", "value": metrics["val_loss"]}


def test_a_test_metric_objective_is_refused(tmp_path):
    result = run_main("retina_seg.train", *TINY_RUN, "optimized_metric=test_IoU", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert f"optimized_metric='test_IoU' must be a validation metric ({VALIDATION_ONLY})" in result.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_eval_reproduces_the_runs_test_metrics(finished_run, tmp_path):
    out, record = finished_run
    data = [o for o in TINY_RUN if o.startswith("data.")]
    result = run_main(
        "retina_seg.eval",
        f"ckpt_path={out / 'checkpoints' / 'best.ckpt'}",
        *data,
        f"hydra.run.dir={tmp_path}",
        "trainer.enable_progress_bar=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = read_metrics(tmp_path)
    assert evaluated["test_IoU"] == pytest.approx(record["test_IoU"], abs=1e-6)
    assert evaluated["test_clDice"] == pytest.approx(record["test_clDice"], abs=1e-6)
    assert evaluated["test_loss"] == pytest.approx(record["test_loss"], rel=1e-5)
    assert evaluated["threshold"] == pytest.approx(record["threshold"])
    assert evaluated["flip_tta"] is True  # from the checkpoint: the run validated and tested with flips
    trained_rows, evaluated_rows = read_test_images(out), read_test_images(tmp_path)
    assert [(r["image"], r["protocol"]) for r in evaluated_rows] == [(r["image"], r["protocol"]) for r in trained_rows]
    for name in ("IoU", "Dice", "clDice"):
        assert [r[name] for r in evaluated_rows] == pytest.approx([r[name] for r in trained_rows], abs=1e-6)


@pytest.mark.parametrize(
    "key, config",
    [
        ("eval_transforms", {"shell": {"_target_": "os.system", "command": "true"}}),
        ("normalize", {"_target_": "albumentations.Compose", "transforms": [{"_target_": "builtins.exec"}]}),
    ],
)
def test_eval_refuses_a_checkpoint_whose_transforms_are_not_albumentations(finished_run, tmp_path, key, config):
    """A checkpoint must not choose what evaluation calls: only albumentations targets, nested ones included."""
    out, _ = finished_run
    checkpoint = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    checkpoint["retina_seg"][key] = config
    crafted = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, crafted)
    data = [o for o in TINY_RUN if o.startswith("data.")]
    result = run_main("retina_seg.eval", f"ckpt_path={crafted}", *data, f"hydra.run.dir={tmp_path / 'eval'}")
    assert result.returncode == 2, result.stderr[-3000:]
    assert str(crafted) in result.stderr and key in result.stderr and "albumentations" in result.stderr
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_resume_continues_the_same_run_folder(tmp_path):
    train(compose(TINY_RUN, tmp_path), tmp_path, "0")
    record = train(compose([*TINY_RUN, "trainer.max_epochs=3"], tmp_path), tmp_path, "0")
    assert record["resumed_from_epoch"] == 2
    assert [r["epoch"] for r in read_epoch_table(tmp_path)] == [0, 1, 2]
    assert read_metrics(tmp_path)["status"] == "completed"


def folder_contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_rerun_with_other_values_is_refused_and_changes_nothing(tmp_path):
    first = run_main("retina_seg.train", *TINY_NET, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}")
    assert first.returncode == 0, first.stderr[-3000:]
    before = folder_contents(tmp_path)
    rerun = run_main(
        "retina_seg.train", *TINY_NET, "optimizer.lr=0.5", "trainer.max_epochs=2", f"hydra.run.dir={tmp_path}"
    )
    assert rerun.returncode == 2, rerun.stderr[-3000:]
    (message,) = [line for line in rerun.stderr.splitlines() if "error:" in line]  # one line, no traceback
    assert str(tmp_path) in message and "optimizer.lr: 0.0001 (not on its command line) -> 0.5" in message
    assert "trainer.max_epochs:" not in message  # extending a run is no difference
    assert "Traceback" not in rerun.stderr
    assert folder_contents(tmp_path) == before  # .hydra/ (config, overrides), metrics.json, checkpoints, lock
    assert read_metrics(tmp_path)["learning_rate"] == 1e-4


def test_every_process_of_a_resumed_run_keeps_its_step_log_and_records_what_it_changed(tmp_path):
    outputs = []
    for epochs in (1, 2, 3):
        result = run_main("retina_seg.train", *TINY_NET, f"trainer.max_epochs={epochs}", f"hydra.run.dir={tmp_path}")
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(result.stdout + result.stderr)
    logs = tmp_path / "logs"
    segments = [logs / "metrics.csv", logs / "attempt-2" / "metrics.csv", logs / "attempt-3" / "metrics.csv"]
    first_epochs = [min(int(row["epoch"]) for row in csv.DictReader(p.open())) for p in segments]
    assert first_epochs == [0, 1, 2]  # each process's log begins where it resumed (and ends with its test)
    assert not any("will be deleted" in output for output in outputs)
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "completed" and metrics["epochs"] == metrics["epochs_done"] == 3
    assert metrics["resumed_from_epoch"] == 2
    assert metrics["resumed_with_changes"] == {"trainer.max_epochs": [1, 3]}  # what the run began with, and now
    assert "trainer.max_epochs=3" in yaml.safe_load((tmp_path / ".hydra" / "overrides.yaml").read_text())


def test_epochs_without_validation_have_no_val_values(tmp_path):
    train(compose([*TINY_RUN, "trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2"], tmp_path), tmp_path, "0")
    rows = read_epoch_table(tmp_path)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert rows[0]["val_IoU"] is None and rows[2]["val_IoU"] is None
    assert isinstance(rows[1]["val_IoU"], float) and rows[0]["train_loss"] > 0
    assert read_metrics(tmp_path)["best_epoch"] == 1


def test_an_output_dir_override_keeps_the_whole_run_folder_together(tmp_path):
    run_dir = tmp_path / "elsewhere"
    result = run_main(
        "retina_seg.train",
        *TINY_RUN,
        "trainer.max_epochs=1",
        f"hydra.run.dir={tmp_path / 'hydra'}",
        f"paths.output_dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "completed" and metrics["best_checkpoint"].startswith(str(run_dir))
    assert not (tmp_path / "hydra" / "metrics.json").exists()


def test_entrypoint_writes_hydra_folder_and_reports_iou(tmp_path):
    result = run_main("retina_seg.train", *TINY_RUN, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test_IoU=" in result.stdout + result.stderr
    assert (tmp_path / ".hydra" / "config.yaml").exists()
    assert read_metrics(tmp_path)["status"] == "completed"


def test_hparams_file_maps_reference_keys(tmp_path):
    path = tmp_path / "hparams.json"
    path.write_text(json.dumps({"epochs": 3, "batch_size": 16, "lr": 5e-5, "threshold": 0.4}))
    cfg = compose([f"hparams_file={path}"], tmp_path)
    assert (cfg.trainer.max_epochs, cfg.data.batch_size, cfg.optimizer.lr, cfg.module.threshold) == (3, 16, 5e-5, 0.4)


def test_command_line_beats_hparams_file_and_every_record_says_the_value_used(tmp_path):
    hparams = tmp_path / "hp.json"
    hparams.write_text(json.dumps({"lr": 0.001, "threshold": 0.4}))
    run_dir = tmp_path / "run"
    result = run_main(
        "retina_seg.train",
        *TINY_RUN,
        "logger=none",
        "optimizer.lr=0.05",
        f"hparams_file={hparams}",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"hparams_file {hparams}: lr=0.001 ignored, the command line sets optimizer.lr=0.05" in result.stdout
    metrics = read_metrics(run_dir)
    saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert metrics["learning_rate"] == metrics["config"]["optimizer"]["lr"] == saved["optimizer"]["lr"] == 0.05
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] == 0.05
    # The file's other key is not on the command line: it applies, and the records say so too.
    assert metrics["threshold"] == saved["module"]["threshold"] == last["retina_seg"]["threshold"] == 0.4


def test_train_config_is_the_config_the_entrypoint_writes(tmp_path):
    """train_config composes and settles as retina-seg-train does: what it returns is the run's
    .hydra/config.yaml, with the hparams file (under the command line) and the epoch scale applied."""
    hparams = tmp_path / "hp.json"
    hparams.write_text(json.dumps({"epochs": 4, "lr": 0.001, "threshold": 0.4}))
    overrides = [
        *(o for o in TINY_RUN if not o.startswith("trainer.max_epochs=")),
        "logger=none",
        "optimizer.lr=0.05",
        f"hparams_file={hparams}",
        "epoch_scale=0.5",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = run_main("retina_seg.train", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    composed = train_config(overrides)
    written = OmegaConf.load(tmp_path / "run" / ".hydra" / "config.yaml")
    assert OmegaConf.to_container(composed) == OmegaConf.to_container(written)
    settled = (composed.trainer.max_epochs, composed.requested_epochs, composed.optimizer.lr, composed.module.threshold)
    assert settled == (2, 4, 0.05, 0.4)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"epochs": 1, "momentum": 0.9}', "unknown key(s) ['momentum']"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"lr": 0.1, "learning_rate": 0.2}', "keys 'lr' and 'learning_rate' both set optimizer.lr"),
        ('{"epochs": "ten"}', "epochs='ten' must be an integer >= 1"),
    ],
)
def test_bad_hparams_file_fails_naming_file_and_key(tmp_path, content, message):
    path = tmp_path / "hparams.json"
    path.write_text(content)
    result = run_main("retina_seg.train", f"hparams_file={path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == EXIT_BAD_INPUT, result.stderr[-3000:]
    assert f"hparams_file {path}: " in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert read_run(tmp_path / "run").status == "failed"


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epochz=1", "Key 'max_epochz' is not in struct"),
        ("model=no_such_model", "Could not find 'model/no_such_model'"),
        ("trainer.max_epochs=abc", "trainer.max_epochs='abc' must be an integer >= 1"),
        ("optimizer.lr=-1", "optimizer.lr=-1 must be a number > 0"),
        ("module.threshold=1.5", "module.threshold=1.5 must be null or in (0, 1)"),
        ("data.source.height=-5", "data.source.height=-5 must be an integer >= 2**model.depth"),
        ("data.source.n_train=0", "data.source.n_train=0 must be an integer >= 1"),
        # The augmentation group is edited at augmentation.<key>: the old key is refused in all its forms.
        ("data.augmentation.train.hflip.p=0.2", "Could not override 'data.augmentation.train.hflip.p'"),
        (
            "+data.augmentation.train.clahe={_target_:albumentations.CLAHE}",
            "data.augmentation must stay ${augmentation}",
        ),
    ],
)
def test_bad_overrides_are_rejected(tmp_path, override, message):
    """Hydra's own refusals come before any folder exists; ours leave a folder the report calls failed."""
    run_dir = tmp_path / "run"
    result = run_main("retina_seg.train", override, f"hydra.run.dir={run_dir}")
    assert result.returncode == EXIT_BAD_INPUT, result.stderr[-3000:]
    assert message in result.stderr
    assert not (run_dir / "checkpoints").exists()
    if run_dir.exists():
        assert "Traceback" not in result.stderr
        assert read_run(run_dir).status == "failed" and message in read_metrics(run_dir)["error"]


def test_bad_data_fails_before_training_naming_the_folder(tmp_path):
    missing = tmp_path / "no-such-data"
    result = run_main(
        "retina_seg.train", "data=retina_kaggle", f"data.root={missing}", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert result.returncode == EXIT_BAD_INPUT, result.stderr[-3000:]
    assert f"retina-seg-train: error: {missing}: data root not found" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert read_metrics(tmp_path / "run")["status"] == "failed"


@pytest.mark.slow
def test_one_epoch_on_real_kaggle_images(kaggle_root, tmp_path):
    overrides = [
        "data=retina_kaggle",
        f"data.root={kaggle_root}",
        "data.source.limit_train=8",
        "data.source.n_val=4",
        "data.source.limit_test=2",
        "trainer.max_epochs=1",
        "callbacks=minimal",
    ]
    record = train(compose(overrides, tmp_path), tmp_path, "0")
    assert record["status"] == "completed"
    assert 0 <= record["test_IoU"] <= 1 and record["test_IoU_all"] <= 1
    assert record["config"]["data"]["source"]["split"] == "grouped"
