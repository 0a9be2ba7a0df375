"""One prepared check of the GPU path: correctness, then throughput, then quality against time.

    python -m benchmarks.gpu_check --out DIR [--kaggle-root ROOT] [--budget-s 540]
    python -m benchmarks.gpu_check --out DIR --cpu-dry-run        # every stage at toy size on CPU (CI)
    python -m benchmarks.gpu_check --prepare-wheels .whl          # on a networked machine, beforehand

Stages run cheapest first, each under its own time cap, and DIR/gpu_check.json and DIR/gpu_check.md are
rewritten after every stage, so a late failure or a kill still leaves the early results:
1. correctness: the GPU-path tests (tests/gpu) on the device, as pytest runs them;
2. throughput: training images/s per network and speed setting, on synthetic tensors already on the
   device (what the GPU alone can do) and through the real pipeline with 0..N loader workers (how much of
   that the data loader lets through: the fed fraction), plus the pipeline against a plain loop;
3. quality against time: the `kaggle_gpu` recipe and the reference's best run (job 18808) under
   `trainer.max_time`, their test IoU and wall time (needs the Kaggle set: --kaggle-root).
Exit status: 1 when a correctness check fails, 2 for bad arguments or missing packages, else 0.

A GPU node without network access may lack the project's pure-Python dependencies: `--prepare-wheels DIR`
downloads wheels of every dependency that is not torch, lightning or torchmetrics (or one of theirs) at
the versions installed here; on the node, `pip install --no-index --no-deps --target /tmp/site DIR/*.whl`
and `PYTHONPATH=/tmp/site:.` make them importable. The check names what is missing before it starts.
"""

import argparse
import contextlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVICE_VARIABLE = "RETINA_SEG_CHECK_DEVICE"  # read by tests/gpu/conftest.py
# What a GPU node is expected to have already; everything else the project imports travels as wheels.
NODE_PROVIDES = ("torch", "lightning", "torchmetrics")
JSON_NAME, MARKDOWN_NAME = "gpu_check.json", "gpu_check.md"
# The reference's best row (sweeps/reference/job_18808.yaml): its network, 1000 epochs, batch 4, Adam 1e-4.
REFERENCE_JOB = ["+reference=job_18808"]


@dataclass(frozen=True)
class Scale:
    """Sizes of one kind of check run: the GPU's real sizes, or toy sizes for the CPU dry run."""

    device: str
    image_size: int
    batch_sizes: dict[str, int]
    warmup_steps: int
    timed_steps: int
    loader_workers: tuple[int, ...]
    compile_backend: str
    stage_caps_s: tuple[float, float]  # correctness, throughput; quality gets the rest of the budget
    model_overrides: tuple[str, ...] = ()  # for each network of the throughput stage


GPU = Scale("cuda", 512, {"unet": 8, "unet_reference": 4}, 5, 20, (0, 4, 8, 15), "inductor", (90, 150))
# torch.compile's eager backend in the dry run: the same plumbing without minutes of CPU kernel compiling. Networks
# of width 8: on a CPU without bf16 in hardware the full-width reference net's emulated bf16 steps took ~180 s of
# the 200 s throughput cap (AMD EPYC, AVX2 only, 2026-12-03).
DRY_RUN = Scale("cpu", 64, {"unet": 2, "unet_reference": 2}, 1, 2, (0, 1), "eager", (300, 200), ("model.base_width=8",))
SETTINGS = {  # name: (module.channels_last, trainer.precision, torch.compile)
    "fp32": (False, "32-true", False),
    "bf16": (False, "bf16-mixed", False),
    "bf16+channels_last": (True, "bf16-mixed", False),
    "bf16+channels_last+compile": (True, "bf16-mixed", True),
}
PIPELINE_SETTING = "bf16+channels_last"  # our trainer=gpu settings


# ----------------------------------------------------------------------------------------- packages
def _requirement_names(requirements: list[str]) -> list[str]:
    from packaging.requirements import Requirement

    names = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return names


def dependency_closure(roots: list[str], exclude: tuple[str, ...] = NODE_PROVIDES) -> dict[str, str]:
    """{distribution: installed version} of ``roots`` and everything they need, without ``exclude``
    and everything the excluded ones need (the node has those)."""

    def closure(names: list[str]) -> dict[str, str]:
        found, todo = {}, list(names)
        while todo:
            name = todo.pop().lower().replace("_", "-")
            if name in found:
                continue
            try:
                distribution = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            found[name] = distribution.version
            todo += _requirement_names(distribution.requires or [])
        return found

    provided = closure(list(exclude))
    return {name: version for name, version in closure(roots).items() if name not in provided}


def project_dependencies() -> list[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return _requirement_names([*project["dependencies"], *project["optional-dependencies"]["export"]])


def prepare_wheels(folder: Path, python_version: str) -> int:
    """Download (no install) wheels of every project dependency the node lacks, for its Python."""
    pins = [f"{name}=={version}" for name, version in sorted(dependency_closure(project_dependencies()).items())]
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28, 31, 34, 35)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(folder),
        f"--python-version={python_version}",
        "--implementation=cp",
        "--platform=manylinux2014_x86_64",
        *platforms,
        "--platform=any",
        *pins,
    ]
    print(" ".join(command), flush=True)
    return subprocess.run(command).returncode


def missing_modules() -> list[str]:
    """Import names the check needs that this Python cannot find."""
    needed = (
        "torch",
        "lightning",
        "torchmetrics",
        "hydra",
        "omegaconf",
        "albumentations",
        "submitit",
        "hydra_plugins.hydra_submitit_launcher",
        "pytest",
        "onnx",
        "onnxruntime",
        "safetensors",
        "skimage",
    )
    return [name for name in needed if _find(name) is None]


def _find(name: str):
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None


# ----------------------------------------------------------------------------------------- records
class Report:
    """Everything measured so far; written (atomically) after every stage."""

    def __init__(self, out: Path, scale: Scale, dry_run: bool):
        from benchmarks.common import machine_line

        self.out, self.started = out, time.monotonic()
        self.data = {
            "machine": machine_line(),
            "device": device_line(scale.device),
            "dry_run": dry_run,
            "versions": versions(),
            "stages": {},
        }

    def stage(self, name: str, result: dict) -> None:
        self.data["stages"][name] = result
        self.save()

    def save(self) -> None:
        from retina_seg.utils.atomic import write_json_atomic, write_text_atomic

        self.data["elapsed_s"] = round(time.monotonic() - self.started, 1)
        write_json_atomic(self.out / JSON_NAME, self.data)
        write_text_atomic(self.out / MARKDOWN_NAME, render_markdown(self.data))


def device_line(device: str) -> str:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"{props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"
    return "CPU (dry run: no GPU used)"


def versions() -> dict[str, str]:
    names = ("torch", "lightning", "torchmetrics", "hydra-core", "albumentations")
    return {name: _version(name) for name in names}


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# ----------------------------------------------------------------------------------------- stage 1
def correctness(scale: Scale, cap_s: float, scratch: Path) -> dict:
    """tests/gpu under pytest on the device; counts read back from its JUnit XML."""
    import xml.etree.ElementTree as ElementTree

    junit = scratch / "gpu-tests.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/gpu", f"--junitxml={junit}"]
    env = {**os.environ, DEVICE_VARIABLE: scale.device, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=cap_s)
        output, timed_out = result.stdout + result.stderr, False
    except subprocess.TimeoutExpired as expired:
        output, timed_out = _text(expired.stdout) + _text(expired.stderr), True
    cases = ElementTree.parse(junit).getroot().iter("testcase") if junit.exists() else []
    outcomes = {case.get("name"): _outcome(case) for case in cases}
    passed = not timed_out and bool(outcomes) and all(o == "passed" for o in outcomes.values())
    return {
        "passed": passed,
        "timed_out": timed_out,
        "seconds": round(time.monotonic() - started, 1),
        "tests": outcomes,
        "output_tail": output[-3000:] if not passed else "",
    }


def _outcome(case) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
    return "passed"


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


# ----------------------------------------------------------------------------------------- stage 2
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


# ----------------------------------------------------------------------------------------- stage 3
def quality_runs(scale: Scale, kaggle_root: Path | None, dry_run: bool) -> dict[str, list[str]]:
    """The two runs of the quality stage: the GPU recipe and the reference's best job on our settings."""
    if dry_run:
        toy = [
            "experiment=quickstart",
            "data.source.n_train=4",
            "data.source.n_val=2",
            "data.source.n_test=2",
            "data.source.height=64",
            "data.source.width=64",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
        ]
        return {
            "kaggle_gpu recipe": [*toy, "trainer=gpu"],
            "reference job 18808 (1000 epochs) on our settings": [
                *toy,
                "trainer=gpu",
                "model=unet_reference",
                "model.base_width=8",
            ],
        }
    data = ["data=retina_kaggle", f"data.root={kaggle_root}"]
    return {
        "kaggle_gpu recipe": ["experiment=kaggle_gpu", *data],
        "reference job 18808 (1000 epochs) on our settings": [
            "-cd",
            str(REPO_ROOT / "sweeps"),
            *REFERENCE_JOB,
            *data,
            "augmentation=reference",
            "trainer=gpu",
            # its masks as the reference read them
            "data.source.mask_rule=nonzero",
            "module.channels_last=true",
            "trainer.check_val_every_n_epoch=50",
        ],
    }


def quality(scale: Scale, budget_s: float, kaggle_root: Path | None, dry_run: bool, scratch: Path) -> dict:
    """Train each run under trainer.max_time (half the stage's time each, less a margin for its test),
    and read back its test IoU, epochs reached and wall time."""
    if kaggle_root is None and not dry_run:
        return {"not measured": "the Kaggle set is needed: --kaggle-root ROOT"}
    runs = quality_runs(scale, kaggle_root, dry_run)
    # The test split again for the reference's protocol (retina-seg-eval protocols=[reference]).
    test_data = (
        [
            "data.source.n_train=4",
            "data.source.n_val=2",
            "data.source.n_test=2",
            "data.source.height=64",
            "data.source.width=64",
            "trainer.accelerator=cpu",
        ]
        if dry_run
        else ["data=retina_kaggle", f"data.root={kaggle_root}", "trainer=gpu"]
    )
    results = {}
    for index, (name, overrides) in enumerate(runs.items()):
        share = budget_s / (len(runs) - index)
        results[name] = quality_run(overrides, share, scratch / f"quality{index}", test_data)
        budget_s -= results[name]["seconds"]
    return results


def reference_protocol_iou(run_dir: Path, test_data: list[str]) -> float | str:
    """The run's best checkpoint scored on the test split under the reference project's protocol."""
    from retina_seg.records.protocols import REFERENCE
    from retina_seg.records.run_folder import read_metrics

    out = run_dir / "reference_protocol"
    command = [
        sys.executable,
        "-m",
        "retina_seg.eval",
        f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
        *test_data,
        "protocols=[reference]",
        f"hydra.run.dir={out}",
        "trainer.enable_progress_bar=false",
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        return f"failed: {result.stderr[-1000:]}"
    return read_metrics(out)[REFERENCE.key("test", "IoU")]


def quality_run(overrides: list[str], share_s: float, run_dir: Path, test_data: list[str]) -> dict:
    from retina_seg.records.run_folder import read_epoch_table, read_metrics

    train_s = max(10, int(share_s * 0.8))  # the rest: start-up, the final validation and test
    limit = f"00:00:{train_s // 60:02d}:{train_s % 60:02d}"
    command = [
        sys.executable,
        "-m",
        "retina_seg.train",
        *overrides,
        f"trainer.max_time={limit}",
        f"hydra.run.dir={run_dir}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
    ]
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=share_s + 120)
        failure = None if result.returncode == 0 else result.stderr[-2000:]
    except subprocess.TimeoutExpired:
        failure = f"still running after {share_s + 120:.0f} s"
    seconds = round(time.monotonic() - started, 1)
    if failure:
        return {"seconds": seconds, "failed": failure}
    metrics = read_metrics(run_dir)
    epochs = len(read_epoch_table(run_dir))
    return {
        "seconds": seconds,
        "train_time_limit_s": train_s,
        "epochs_reached": epochs,
        "epochs_asked": metrics["epochs"],
        "wall_time_s": metrics.get("wall_time_s"),
        "seconds_per_epoch": round(metrics["wall_time_s"] / epochs, 2) if epochs else None,
        "projected_s_for_all_epochs": round(metrics["wall_time_s"] / epochs * metrics["epochs"]) if epochs else None,
        "test_IoU (ours: pooled, in FOV, threshold from val)": metrics.get("test_IoU"),
        "test_IoU (the reference's protocol: masks > 0, per-image at 0.5, all pixels)": reference_protocol_iou(
            run_dir, test_data
        ),
        "val_IoU": metrics.get("val_IoU"),
        "threshold": metrics.get("threshold"),
    }


# ----------------------------------------------------------------------------------------- output
def render_markdown(data: dict) -> str:
    from benchmarks.common import markdown_table

    lines = [
        f"# GPU check{' (CPU dry run)' if data['dry_run'] else ''}",
        "",
        f"- machine: {data['machine']}",
        f"- device: {data['device']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()),
        f"- elapsed: {data.get('elapsed_s', 0)} s",
        "",
    ]
    stages = data["stages"]
    if "correctness" in stages:
        c = stages["correctness"]
        lines += [
            f"## 1. Correctness: {'passed' if c['passed'] else 'FAILED'} ({c['seconds']} s)",
            "",
            markdown_table(("test", "outcome"), sorted(c["tests"].items())),
            "",
        ]
    if "throughput" in stages:
        t = stages["throughput"]
        lines += [
            "## 2. Throughput (training images/s)",
            "",
            markdown_table(("what", "images/s"), t["images_per_s"].items()),
            "",
            markdown_table(("ratio", "value"), [(k, "-" if v is None else v) for k, v in t["ratios"].items()]),
            "",
        ]
        if t["skipped_at_cap"]:
            lines += ["Not measured (stage time cap reached): " + "; ".join(t["skipped_at_cap"]), ""]
    if "quality" in stages:
        lines += ["## 3. Quality against time", ""]
        for name, result in stages["quality"].items():
            rows = result.items() if isinstance(result, dict) else [("", result)]
            lines += [f"### {name}", "", markdown_table(("", "value"), rows), ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--cpu-dry-run", action="store_true", help="every stage at toy size on the CPU")
    parser.add_argument("--budget-s", type=float, default=540, help="wall-time budget of all stages (default 540)")
    parser.add_argument("--kaggle-root", type=Path, default=None, help="the Kaggle set, for the quality stage")
    parser.add_argument(
        "--prepare-wheels",
        type=Path,
        default=None,
        metavar="DIR",
        help="download wheels of the dependencies a GPU node lacks into DIR, then exit",
    )
    parser.add_argument("--python-version", default="3.12", help="the node's Python, for --prepare-wheels")
    args = parser.parse_args(argv)
    if args.prepare_wheels is None and args.out is None:
        parser.error("--out DIR is required")
    if args.kaggle_root is not None and not (args.kaggle_root / "train").is_dir():
        parser.error(f"--kaggle-root {args.kaggle_root}: no train/ folder there")
    if args.budget_s < 60:
        parser.error(f"--budget-s must be at least 60, got {args.budget_s}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.prepare_wheels is not None:
        return prepare_wheels(args.prepare_wheels, args.python_version)
    missing = missing_modules()
    if missing:
        print(
            f"error: missing Python packages: {', '.join(missing)}; on a networked machine run "
            f"`python -m benchmarks.gpu_check --prepare-wheels .whl` and install them here (see --help)",
            file=sys.stderr,
        )
        return 2
    import torch

    if not args.cpu_dry_run and not torch.cuda.is_available():
        print(
            "error: no CUDA device is visible to torch; use --cpu-dry-run to check the script on a CPU", file=sys.stderr
        )
        return 2
    scale = DRY_RUN if args.cpu_dry_run else GPU
    args.out.mkdir(parents=True, exist_ok=True)
    report = Report(args.out, scale, args.cpu_dry_run)
    print(f"machine: {report.data['machine']}\ndevice: {report.data['device']}", flush=True)
    deadline = time.monotonic() + args.budget_s
    with tempfile.TemporaryDirectory(prefix="retina-seg-gpu-check-") as scratch:
        checked = correctness(scale, min(scale.stage_caps_s[0], deadline - time.monotonic()), Path(scratch))
        report.stage("correctness", checked)
        print(f"correctness: {'passed' if checked['passed'] else 'FAILED'} in {checked['seconds']} s", flush=True)
        cap = min(scale.stage_caps_s[1], deadline - time.monotonic() - 60)
        report.stage("throughput", throughput(scale, cap, Path(scratch)))
        print("throughput: done", flush=True)
        report.stage(
            "quality", quality(scale, deadline - time.monotonic(), args.kaggle_root, args.cpu_dry_run, Path(scratch))
        )
    print(f"results: {args.out / JSON_NAME}, {args.out / MARKDOWN_NAME}")
    print(
        f"gpu check: correctness {'passed' if checked['passed'] else 'FAILED'}, "
        f"{report.data['elapsed_s']} s of {args.budget_s:.0f} s"
    )
    return 0 if checked["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
