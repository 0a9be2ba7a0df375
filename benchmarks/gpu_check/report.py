"""The check's record: DIR/gpu_check.json and its Markdown rendering, rewritten after every stage."""

import importlib.metadata
import time
from pathlib import Path

from benchmarks.gpu_check.scales import Scale

JSON_NAME, MARKDOWN_NAME = "gpu_check.json", "gpu_check.md"


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
