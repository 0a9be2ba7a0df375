"""The quality table: the CPU recipe trained with several seeds, tested on the Kaggle split and on DRIVE.

Each seed is one `retina-seg-train experiment=kaggle_cpu` run, exactly the README's command, in its own run
folder under --out (a seed whose folder already holds a completed run is read, not trained again, so an
interrupted table resumes). Its best checkpoint is then evaluated by `retina-seg-eval data=drive` on the DRIVE
test set at its native 565x584 with DRIVE's own FOV masks. The Kaggle set is DRIVE resized to 512x512, so the
second table checks robustness to resolution, not new photographs.

--recipe picks the experiment (kaggle_cpu, or kaggle_cpu_reference: trained on the reference's masks).
--protocols strict reference also scores each best checkpoint on the Kaggle test split under the reference
project's protocol (`retina-seg-eval protocols=[reference]`: masks > 0, per-image IoU at 0.5 over all pixels,
averaged; retina_seg/records/protocols.py), printed beside the reference's published 0.701 and beside DRIVE's
second observer measured the same way on the same grid (benchmarks/human_baseline.py; not with --quick).

Prints the tables (one row per seed, then mean and sample standard deviation) and ends with one claim line
per protocol: `mean test IoU over N seeds (Kaggle test split, <protocol>): M +- S`.
--quick trains the synthetic quickstart for one epoch per seed and evaluates 2 DRIVE images: a check of
the plumbing (seconds per seed), not of quality.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.common import argument_parser, fail, machine_line, markdown_table, run_command, save_results
from benchmarks.human_baseline import human_scores
from retina_seg.data.errors import DataError
from retina_seg.records.protocols import PER_IMAGE_SCORES, PROTOCOLS, REFERENCE
from retina_seg.records.run_folder import completed_metrics, read_metrics

SCORES = ("IoU", "Dice", "clDice", "AUC", "accuracy", "sensitivity", "specificity")
RECIPES = ("kaggle_cpu", "kaggle_cpu_reference")
# The reference project's best test IoU (job 18808: 1000 epochs on 4 GPUs), measured under its own protocol.
REFERENCE_PUBLISHED_IOU = 0.701
QUICK_RECIPE = [
    "experiment=quickstart",
    "trainer.max_epochs=1",
    "data.source.n_train=4",
    "data.source.n_val=2",
    "data.source.n_test=2",
    "trainer.enable_progress_bar=false",
]


def parse_args(argv: list[str] | None):
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipe", choices=RECIPES, default="kaggle_cpu", help="the experiment every seed trains")
    parser.add_argument(
        "--protocols",
        nargs="+",
        choices=sorted(PROTOCOLS),
        default=["strict"],
        help="evaluation protocols of the Kaggle test scores (strict: the run's own)",
    )
    parser.add_argument("--kaggle-root", type=Path, default=Path("../shared/data/retina-blood-vessel"))
    parser.add_argument("--drive-root", type=Path, default=Path("../shared/data/DRIVE"))
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmark-runs/quality"),
        help="one run folder per seed (seed_<n>/), reused when already completed",
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every training run")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        fail(f"--seeds must be distinct, got {args.seeds}")
    for name in ("kaggle_root", "drive_root"):
        root = getattr(args, name)
        if not (args.quick and name == "kaggle_root") and not root.is_dir():
            fail(f"--{name.replace('_', '-')} {root} is not a folder")
    return args


def train_seed(seed: int, args) -> dict:
    run_dir = (args.out / f"seed_{seed}").resolve()
    metrics = completed_metrics(run_dir)
    if metrics is None:
        recipe = (
            QUICK_RECIPE if args.quick else [f"experiment={args.recipe}", f"data.root={args.kaggle_root.resolve()}"]
        )
        print(f"seed {seed}: training in {run_dir}", flush=True)
        run_command("retina_seg.train", [*recipe, *args.overrides, f"seed={seed}", f"hydra.run.dir={run_dir}"])
        metrics = completed_metrics(run_dir)
        if metrics is None:
            fail(f"seed {seed}: {run_dir / 'metrics.json'} is not a completed run")
    else:
        print(f"seed {seed}: reusing the completed run in {run_dir}", flush=True)
    return metrics


def evaluate_on_drive(seed: int, metrics: dict, args) -> dict:
    """The run's best checkpoint on DRIVE's test set, with the run's own test-time flips."""
    run_dir = (args.out / f"seed_{seed}").resolve()
    limit = ["data.source.limit_test=2"] if args.quick else []
    flips = str(metrics["config"]["module"]["flip_tta"]).lower()
    run_command(
        "retina_seg.eval",
        [
            f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
            "data=drive",
            f"data.root={args.drive_root.resolve()}",
            f"flip_tta={flips}",
            *limit,
            "scale_aware=false",  # the table is DRIVE at its native resolution
            f"hydra.run.dir={run_dir / 'drive_test'}",
            "trainer.enable_progress_bar=false",
        ],
    )
    return read_metrics(run_dir / "drive_test")


def evaluate_reference_protocol(seed: int, metrics: dict, args) -> dict:
    """The run's best checkpoint on the Kaggle test split under the reference project's protocol."""
    run_dir = (args.out / f"seed_{seed}").resolve()
    data = (
        ["data.source.n_train=4", "data.source.n_val=2", "data.source.n_test=2"]
        if args.quick
        else ["data=retina_kaggle", f"data.root={args.kaggle_root.resolve()}"]
    )
    run_command(
        "retina_seg.eval",
        [
            f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
            *data,
            "protocols=[reference]",
            f"hydra.run.dir={run_dir / 'kaggle_reference_protocol'}",
            "trainer.enable_progress_bar=false",
        ],
    )
    return read_metrics(run_dir / "kaggle_reference_protocol")


def second_observer(args) -> dict[str, float]:
    """DRIVE's second observer on the Kaggle test grid under the reference's protocol (the human baseline)."""
    try:
        return human_scores(args.drive_root, args.kaggle_root)["reference"]
    except DataError as error:
        fail(str(error))


def scores(metrics: dict, suffix: str) -> list[float]:
    """The test scores inside the FOV (suffix "") or over all pixels (suffix "_all")."""
    return [float(metrics[f"test_{name}{suffix}"]) for name in SCORES]


def run_facts(metrics: dict) -> list[float]:
    return [
        float(metrics["val_IoU"]),
        float(metrics["threshold"]),
        float(metrics["best_epoch"]),
        metrics["wall_time_s"] / 60,
    ]


def table(headers: list[str], rows: dict[int, list[float]], decimals: list[int] | None = None) -> str:
    """One row per seed, then the mean and the sample standard deviation of each column."""
    columns = list(zip(*rows.values()))
    decimals = decimals or [4] * len(columns)
    spread = [statistics.stdev(c) if len(c) > 1 else None for c in columns]  # one seed has no spread
    body = [[f"seed {seed}", *(f"{v:.{d}f}" for v, d in zip(values, decimals))] for seed, values in rows.items()]
    body.append(["**mean**", *(f"**{statistics.fmean(c):.{d}f}**" for c, d in zip(columns, decimals))])
    body.append(["std", *("-" if v is None else f"{v:.{d}f}" for v, d in zip(spread, decimals))])
    return markdown_table(["run", *headers], body)


def report_reference_protocol(reference: dict[int, dict], human: dict[str, float] | None) -> None:
    print(
        f"\nKaggle test split under the reference's protocol ({REFERENCE.describe()}); the reference's own "
        f"best: IoU {REFERENCE_PUBLISHED_IOU}:"
    )
    print(
        table(
            list(PER_IMAGE_SCORES),
            {
                seed: [float(m[REFERENCE.key("test", name)]) for name in PER_IMAGE_SCORES]
                for seed, m in reference.items()
            },
        )
    )
    if human is not None:
        print(
            "DRIVE's second observer (a person) on the same grid, measured the same way: "
            + ", ".join(f"{name} {human[name]:.4f}" for name in PER_IMAGE_SCORES)
        )


def claim(ious: list[float], protocol: str) -> str:
    spread = f" +- {statistics.stdev(ious):.4f}" if len(ious) > 1 else " (one seed: no spread)"
    return f"mean test IoU over {len(ious)} seeds (Kaggle test split, {protocol}): {statistics.fmean(ious):.4f}{spread}"


def report(runs: dict[int, dict], drive: dict[int, dict]) -> None:
    for title, results in (
        ("Kaggle test split (20 images at 512x512; FOV detected; threshold chosen on val)", runs),
        ("DRIVE test set (the same photographs at 565x584, with DRIVE's FOV masks)", drive),
    ):
        for region, suffix in (("inside the FOV", ""), ("over all pixels", "_all")):
            print(f"\n{title}, {region}:")
            print(table(list(SCORES), {seed: scores(m, suffix) for seed, m in results.items()}))
    print("\nTraining runs:")
    print(
        table(
            ["val IoU", "threshold", "best epoch", "training minutes"],
            {seed: run_facts(m) for seed, m in runs.items()},
            decimals=[4, 3, 1, 1],
        )
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    print(f"machine: {machine_line()}", flush=True)
    runs = {seed: train_seed(seed, args) for seed in args.seeds}
    drive = {seed: evaluate_on_drive(seed, metrics, args) for seed, metrics in runs.items()}
    reference = (
        {seed: evaluate_reference_protocol(seed, metrics, args) for seed, metrics in runs.items()}
        if "reference" in args.protocols
        else {}
    )
    human = second_observer(args) if reference and not args.quick else None  # --quick has no real Kaggle set
    report(runs, drive)
    if reference:
        report_reference_protocol(reference, human)
    save_results(
        args.json,
        {
            "quick": args.quick,
            "seeds": args.seeds,
            "recipe": args.recipe,
            "overrides": args.overrides,
            "kaggle": {str(s): m for s, m in runs.items()},
            "drive": {str(s): d for s, d in drive.items()},
            "kaggle_reference_protocol": {str(s): r for s, r in reference.items()},
            "second_observer_reference_protocol": human,
        },
    )
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    if "strict" in args.protocols:
        print(claim([m["test_IoU"] for m in runs.values()], "strict protocol: in the FOV, threshold from val"))
    if reference:
        print(claim([m[REFERENCE.key("test", "IoU")] for m in reference.values()], "the reference's protocol"))


if __name__ == "__main__":
    main()
