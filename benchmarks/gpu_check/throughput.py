"""Stage 2: training images/s per network and speed setting, on tensors already on the device and through
the real pipeline with each loader-worker count, plus the pipeline against a plain loop."""

import contextlib
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchmarks.gpu_check.scales import PIPELINE_SETTING, SETTINGS, Scale


class StepTimer:
    """Counts training steps: ``warmup`` untimed, then ``steps`` timed. The device is synchronised at both
    ends of the timed window, so queued GPU work counts. Same interface as benchmarks.common.WindowClock
    (``step_done()`` is True when the loop should stop), so the throughput benchmark's loops can use it."""

    def __init__(self, warmup: int, steps: int, synchronize: Callable[[], None]):
        self.warmup, self.steps, self.synchronize = warmup, steps, synchronize
        self.done, self.started, self.seconds = 0, 0.0, None

    def step_done(self) -> bool:
        self.done += 1
        if self.done == self.warmup:
            self.synchronize()
            self.started = time.perf_counter()
        elif self.done == self.warmup + self.steps:
            self.synchronize()
            self.seconds = time.perf_counter() - self.started
            return True
        return False


def throughput_config(scale: Scale, model: str, setting: str, workers: int, scratch: Path):
    """The training config as retina-seg-train composes it: trainer=gpu on the device, synthetic data
    at the check's size with enough training batches for warm-up and the timed window."""
    from retina_seg.training.run_config import train_config

    channels_last, precision, _ = SETTINGS[setting]
    batch = scale.batch_sizes[model]
    steps = scale.warmup_steps + scale.timed_steps + 1
    overrides = [
        f"model={model}",
        "trainer=gpu",
        f"trainer.accelerator={_accelerator(scale.device)}",
        f"trainer.precision={precision}",
        f"module.channels_last={str(channels_last).lower()}",
        "data=synthetic",
        f"data.source.height={scale.image_size}",
        f"data.source.width={scale.image_size}",
        f"data.source.n_train={2 * batch}",
        "data.source.n_val=1",
        "data.source.n_test=1",
        f"data.batch_size={batch}",
        f"data.train_repeats={-(-steps // 2)}",
        f"data.num_workers={workers}",
        "trainer.max_epochs=1",
        "trainer.enable_model_summary=false",
        "trainer.enable_progress_bar=false",
        "logger=none",
        "callbacks=minimal",
        *scale.model_overrides,
    ]
    return train_config(overrides, scratch / model / setting / str(workers))


def _accelerator(device: str) -> str:
    return "gpu" if device == "cuda" else "cpu"


def _synchronizer(device: str) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def _autocast(device: str, precision: str):
    import torch

    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision.startswith("bf16"))


def device_only_rate(cfg, scale: Scale, setting: str) -> float:
    """Images/s of the bare training step on tensors already on the device: what the GPU alone does."""
    import torch
    from hydra.utils import instantiate

    from retina_seg.training.pipeline import build_module

    channels_last, precision, compiled = SETTINGS[setting]
    module = build_module(cfg, 3).to(scale.device)
    net = torch.compile(module.net, backend=scale.compile_backend) if compiled else module.net
    optimizer = instantiate(cfg.optimizer)(params=module.net.parameters())
    batch, size = cfg.data.batch_size, scale.image_size
    image = torch.randn(batch, 3, size, size, device=scale.device)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    mask = (torch.rand(batch, 1, size, size, device=scale.device) > 0.9).float()
    fov = torch.ones_like(mask, dtype=torch.bool)
    timer = StepTimer(scale.warmup_steps, scale.timed_steps, _synchronizer(scale.device))
    while True:
        optimizer.zero_grad(set_to_none=True)
        with _autocast(scale.device, precision):
            loss = module.loss(net(image), mask, fov)
        loss.backward()
        optimizer.step()
        if timer.step_done():
            return batch * timer.steps / timer.seconds


def plain_loop_rate(cfg, scale: Scale, setting: str) -> float:
    """Images/s of the textbook loop over our data loader, on the device."""
    from hydra.utils import instantiate

    from benchmarks.throughput import seeded_setup

    _, precision, _ = SETTINGS[setting]
    datamodule, module = seeded_setup(cfg)
    module = module.to(scale.device)
    optimizer = instantiate(cfg.optimizer)(params=module.net.parameters())
    timer = StepTimer(scale.warmup_steps, scale.timed_steps, _synchronizer(scale.device))
    for batch in datamodule.train_dataloader():
        image, mask, fov = (batch[k].to(scale.device, non_blocking=True) for k in ("image", "mask", "fov"))
        optimizer.zero_grad(set_to_none=True)
        with _autocast(scale.device, precision):
            loss = module.loss(module.net(module._layout(image)), mask, fov)
        loss.backward()
        optimizer.step()
        if timer.step_done():
            break
    return cfg.data.batch_size * timer.steps / timer.seconds


def pipeline_rate(cfg, scale: Scale) -> float:
    """Images/s of the real Lightning fit (our datamodule, module, trainer, callbacks)."""
    from benchmarks.throughput import pipeline_loop

    timer = StepTimer(scale.warmup_steps, scale.timed_steps, _synchronizer(scale.device))
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        pipeline_loop(cfg)(timer)
    if timer.seconds is None:
        raise RuntimeError(f"the fit ended after {timer.done} steps, before its timed window")
    return cfg.data.batch_size * timer.steps / timer.seconds


def throughput(scale: Scale, cap_s: float, scratch: Path) -> dict:
    """Each network: device-only rates per setting, then the pipeline with each loader-worker count and
    the plain loop, at our GPU settings. Stops measuring (saying so) when the stage's cap is reached."""
    from benchmarks.common import quiet_libraries

    quiet_libraries()
    deadline = time.monotonic() + cap_s
    results, skipped = {}, []

    def measure(key: tuple, run: Callable[[], float]) -> None:
        if time.monotonic() > deadline:
            skipped.append(" / ".join(map(str, key)))
            return
        try:
            results["/".join(map(str, key))] = round(run(), 2)
        except Exception as error:  # noqa: BLE001 - one failed variant is reported, the rest still measured
            results["/".join(map(str, key))] = f"failed: {type(error).__name__}: {str(error)[:300]}"

    for model in scale.batch_sizes:
        for setting in SETTINGS:
            cfg = throughput_config(scale, model, setting, 0, scratch)
            measure((model, "device only", setting), partial(device_only_rate, cfg, scale, setting))
        for workers in scale.loader_workers:
            cfg = throughput_config(scale, model, PIPELINE_SETTING, workers, scratch)
            measure((model, "pipeline", PIPELINE_SETTING, f"{workers} workers"), partial(pipeline_rate, cfg, scale))
        cfg = throughput_config(scale, model, PIPELINE_SETTING, scale.loader_workers[-1], scratch)
        measure(
            (model, "plain loop", PIPELINE_SETTING, f"{scale.loader_workers[-1]} workers"),
            partial(plain_loop_rate, cfg, scale, PIPELINE_SETTING),
        )
    return {"images_per_s": results, "skipped_at_cap": skipped, "ratios": throughput_ratios(results, scale)}


def throughput_ratios(rates: dict, scale: Scale) -> dict:
    """Fed fraction (pipeline / device only, same setting) per worker count; overhead (pipeline / plain
    loop, same workers); the speed-up of each setting over fp32 on the device."""

    def rate(*key) -> float | None:
        value = rates.get("/".join(map(str, key)))
        return value if isinstance(value, float) else None

    def ratio(a, b) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    ratios = {}
    for model in scale.batch_sizes:
        device_only = rate(model, "device only", PIPELINE_SETTING)
        for workers in scale.loader_workers:
            pipe = rate(model, "pipeline", PIPELINE_SETTING, f"{workers} workers")
            ratios[f"{model}/fed fraction/{workers} workers"] = ratio(pipe, device_only)
        last = f"{scale.loader_workers[-1]} workers"
        ratios[f"{model}/overhead (pipeline/plain)"] = ratio(
            rate(model, "pipeline", PIPELINE_SETTING, last), rate(model, "plain loop", PIPELINE_SETTING, last)
        )
        for setting in SETTINGS:
            ratios[f"{model}/speed-up {setting} over fp32"] = ratio(
                rate(model, "device only", setting), rate(model, "device only", "fp32")
            )
    return ratios
