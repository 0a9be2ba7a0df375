"""The check's command line: `python -m benchmarks.gpu_check` (see the package's docstring)."""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import benchmarks.gpu_check
from benchmarks.gpu_check.correctness import correctness
from benchmarks.gpu_check.quality import quality
from benchmarks.gpu_check.report import JSON_NAME, MARKDOWN_NAME, Report
from benchmarks.gpu_check.scales import DRY_RUN, GPU
from benchmarks.gpu_check.throughput import throughput
from benchmarks.gpu_check.wheels import missing_modules, prepare_wheels


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check", description=benchmarks.gpu_check.__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--cpu-dry-run", action="store_true", help="every stage at toy size on the CPU")
    parser.add_argument("--budget-s", type=float, default=540, help="wall-time budget of all stages (default 540)")
    parser.add_argument(
        "--select",
        default=None,
        metavar="EXPR",
        help="run only the GPU-path tests that match this pytest -k expression (default: all of tests/gpu)",
    )
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
        cap = min(scale.stage_caps_s[0], deadline - time.monotonic())
        checked = correctness(scale, cap, Path(scratch), args.select)
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
