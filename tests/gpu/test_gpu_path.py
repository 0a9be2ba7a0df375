"""The GPU path end to end, on the check's device: `trainer=gpu` runs in fp32 and bf16 to a completed
run folder and resume from last.ckpt, DDP on one device (NCCL on CUDA), metrics on the device equal to
the CPU computation, eval and predict on the device, and export of a checkpoint trained there."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from retina_seg.data.synthetic import synthesize_fundus
from retina_seg.records.run_folder import read_metrics
from retina_seg.scoring.pooled import VesselMetrics, summarize
from tests.helpers.runs import TINY_RUN, run_cli, run_main

PRECISIONS = ("32-true", "bf16-mixed")
TINY_DATA = [o for o in TINY_RUN if o.startswith("data.")]


def train_cli(run_dir: Path, *overrides: str):
    result = run_cli(
        "retina_seg.train",
        *TINY_RUN,
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
        *overrides,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory, accelerator):
    """One `trainer=gpu` run of one epoch per precision, then resumed for a second epoch in its folder."""
    runs = {}
    for precision in PRECISIONS:
        run_dir = tmp_path_factory.mktemp(f"run-{precision}")
        first = train_cli(
            run_dir,
            "trainer=gpu",
            f"trainer.accelerator={accelerator}",
            f"trainer.precision={precision}",
            "trainer.max_epochs=1",
        )
        after_first = read_metrics(run_dir)
        resumed = train_cli(
            run_dir,
            "trainer=gpu",
            f"trainer.accelerator={accelerator}",
            f"trainer.precision={precision}",
            "trainer.max_epochs=2",
        )
        runs[precision] = run_dir, after_first, first.stderr + resumed.stderr
    return runs


@pytest.mark.parametrize("precision", PRECISIONS)
def test_trainer_gpu_completes_and_resumes(trained, precision, device):
    run_dir, after_first, log = trained[precision]
    assert after_first["status"] == "completed" and after_first["epochs"] == 1
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "completed" and metrics["resumed_from_epoch"] == 1 and metrics["epochs"] == 2
    assert metrics["config"]["trainer"]["precision"] == precision
    assert all(isinstance(metrics[k], float) for k in ("val_IoU", "val_loss", "test_IoU", "test_loss"))
    resumed = f"Resuming from checkpoint {run_dir / 'checkpoints' / 'last.ckpt'}: 1 epoch(s) done"
    assert resumed in (run_dir / "train.log").read_text()
    if device == "cuda":
        assert "GPU available: True (cuda), used: True" in log


def test_ddp_on_one_device_uses_the_devices_backend(tmp_path, accelerator, device):
    result = train_cli(
        tmp_path, "trainer=ddp", f"trainer.accelerator={accelerator}", "trainer.devices=1", "trainer.max_epochs=1"
    )
    backend = "nccl" if device == "cuda" else "gloo"
    assert f"distributed_backend={backend}" in result.stdout + result.stderr
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "completed"
    assert metrics["config"]["trainer"]["sync_batchnorm"] is (device == "cuda")


def test_metrics_on_the_device_equal_the_cpu_computation(device):
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(3, 1, 97, 83, generator=generator)
    truth = torch.rand(3, 1, 97, 83, generator=generator) > 0.8
    fov = torch.rand(3, 1, 97, 83, generator=generator) > 0.1
    on_cpu, on_device = VesselMetrics(), VesselMetrics().to(device)
    on_cpu.update(probs, truth, fov)
    on_device.update(probs.to(device), truth.to(device), fov.to(device))
    expected, measured = summarize(on_cpu, 0.5, "val"), summarize(on_device, 0.5, "val")
    assert expected.keys() == measured.keys()
    assert all(abs(measured[k] - expected[k]) <= 1e-6 for k in expected), (expected, measured)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_eval_and_predict_on_the_device_match_the_run(trained, precision, accelerator, device, tmp_path):
    run_dir = trained[precision][0]
    best = run_dir / "checkpoints" / "best.ckpt"
    evaluated = run_main(
        "retina_seg.eval",
        f"ckpt_path={best}",
        *TINY_DATA,
        f"trainer.accelerator={accelerator}",
        f"hydra.run.dir={tmp_path / 'eval'}",
        "trainer.enable_progress_bar=false",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    # The run tested in its own precision; eval runs fp32: bf16's rounding may move a few pixels.
    tolerance = 1e-4 if precision == "32-true" else 2e-2
    assert read_metrics(tmp_path / "eval")["test_IoU"] == pytest.approx(
        read_metrics(run_dir)["test_IoU"], abs=tolerance
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in (1, 2):
        Image.fromarray(synthesize_fundus(seed, 64, 64)[0]).save(photos / f"photo{seed}.png")
    predicted = run_main(
        "retina_seg.predict",
        f"ckpt_path={best}",
        f"input={photos}",
        f"output={tmp_path / 'out'}",
        f"device={device}",
        f"hydra.run.dir={tmp_path / 'predict'}",
        "progress_bar=false",
        "num_workers=0",
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert summary["device"] == device and summary["predicted"] == 2 and not summary["failed"]


def test_export_of_a_checkpoint_trained_on_the_device(trained, tmp_path):
    best = trained["bf16-mixed"][0] / "checkpoints" / "best.ckpt"
    result = run_main(
        "retina_seg.export",
        f"ckpt_path={best}",
        f"output={tmp_path}",
        f"hydra.run.dir={tmp_path / 'h'}",
        "parity.sizes=[[75,61],[64,64]]",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    exports = json.loads((tmp_path / "model_card.json").read_text())["exports"]
    for kind in ("pt2", "onnx", "torchscript"):
        assert (tmp_path / exports[kind]["file"]).stat().st_size > 0
        assert max(exports[kind]["parity_max_abs_diff"].values()) < 1e-4
