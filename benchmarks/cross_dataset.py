"""The cross-dataset table: models trained on one data set, evaluated on DRIVE test and STARE, with and without
scale-aware prediction, beside the second observer (the human baseline) and published reference points.

Two checkpoints, each given (--kaggle-ckpt, --drive-ckpt) or trained here into --out (a completed run folder
there is reused, so an interrupted table resumes):
  * kaggle: the CPU recipe, `retina-seg-train experiment=kaggle_cpu` (the Kaggle set: DRIVE's training
    photographs resized to 512x512);
  * drive: the same recipe on DRIVE at its native 565x584 (`data=drive`, 32 crops per photograph per epoch, so
    its 15 training photographs give the recipe's 60 steps per epoch).
Each is evaluated by `retina-seg-eval` on DRIVE's 20 test photographs and on all 20 STARE photographs
(`data.source.split=all`), inside the FOV, at the threshold stored in the checkpoint, with its own test-time
flips, once with `scale_aware=true` (the default) and once with `scale_aware=false`. `retina-seg-eval
second_observer=true` scores each set's second observer against the first.

Ends with the line `STARE Dice of the DRIVE-trained model: scale-aware A, native scale B (published ...)`.
--quick trains each missing checkpoint for one epoch on a few real photographs and evaluates 2 photographs per
set: a check of the plumbing, not of quality.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.common import argument_parser, fail, machine_line, markdown_table, run_command, save_results
from retina_seg.records.run_folder import completed_metrics, read_metrics

SCORES = ("IoU", "Dice", "clDice", "AUC", "sensitivity", "specificity")
DATA_SETS = {
    "drive": ("DRIVE test split (565x584)", []),
    "stare": ("STARE, every photograph (split=all; 700x605)", ["data.source.split=all"]),
}
# Idiap bob.ip.binseg result tables, F1 (= Dice) inside the FOV.
PUBLISHED_F1 = {
    "second observer": {"drive": 0.788, "stare": 0.759},
    "U-Net trained on DRIVE": {"stare": 0.807, "chase_db1": 0.752},
}
RECIPES = {
    "kaggle": ["experiment=kaggle_cpu"],
    "drive": ["experiment=kaggle_cpu", "data=drive", "data.train_repeats=32"],
}
QUICK_TRAINING = {
    "kaggle": ["data.source.limit_train=8", "data.source.n_val=4"],
    "drive": ["data.source.limit_train=4", "data.source.n_val=1"],
}
QUICK_SETTINGS = [
    "data.train_repeats=1",
    "trainer.max_epochs=1",
    "trainer.check_val_every_n_epoch=1",
    "data.source.limit_test=2",
    "trainer.enable_progress_bar=false",
]
MODEL_NAMES = {"kaggle": "kaggle_cpu recipe (Kaggle set, 512x512)", "drive": "recipe on DRIVE (native 565x584)"}


def parse_args(argv: list[str] | None):
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--kaggle-ckpt", type=Path, default=None, help="the recipe's best checkpoint (else trained)")
    parser.add_argument("--drive-ckpt", type=Path, default=None, help="a DRIVE-native best checkpoint (else trained)")
    parser.add_argument("--kaggle-root", type=Path, default=Path("../shared/data/retina-blood-vessel"))
    parser.add_argument("--drive-root", type=Path, default=Path("../shared/data/DRIVE"))
    parser.add_argument("--stare-root", type=Path, default=Path("../shared/data/STARE"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the trainings run here")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmark-runs/cross_dataset"),
        help="training runs (kaggle/, drive/, reused when completed) and evaluations (eval/)",
    )
    args = parser.parse_args(argv)
    for name in ("kaggle_ckpt", "drive_ckpt"):
        path = getattr(args, name)
        if path is not None and not path.is_file():
            fail(f"--{name.replace('_', '-')} {path} is not a file")
    needed = ["drive_root", "stare_root"] + (["kaggle_root"] if args.kaggle_ckpt is None else [])
    for name in needed:
        if not getattr(args, name).is_dir():
            fail(f"--{name.replace('_', '-')} {getattr(args, name)} is not a folder")
    return args


def checkpoint(model: str, args) -> Path:
    """The given checkpoint, or the best one of a completed training run in --out (trained when missing)."""
    given = getattr(args, f"{model}_ckpt")
    if given is not None:
        return given.resolve()
    run_dir = (args.out / model).resolve()
    if completed_metrics(run_dir) is None:
        root = args.kaggle_root if model == "kaggle" else args.drive_root
        quick = [*QUICK_TRAINING[model], *QUICK_SETTINGS] if args.quick else []
        print(f"{model}: training in {run_dir}", flush=True)
        run_command(
            "retina_seg.train",
            [*RECIPES[model], f"data.root={root.resolve()}", f"seed={args.seed}", *quick, f"hydra.run.dir={run_dir}"],
        )
        if completed_metrics(run_dir) is None:
            fail(f"{model}: {run_dir / 'metrics.json'} is not a completed run")
    else:
        print(f"{model}: reusing the completed run in {run_dir}", flush=True)
    return run_dir / "checkpoints" / "best.ckpt"


def evaluation(name: str, data: str, settings: list[str], args) -> dict:
    """One `retina-seg-eval` run on a data set's evaluation split; its metrics.json."""
    out = (args.out / "eval" / f"{name}_{data}").resolve()
    limit = ["data.source.limit_test=2"] if args.quick else []
    root = getattr(args, f"{data}_root").resolve()
    run_command(
        "retina_seg.eval",
        [
            *settings,
            f"data={data}",
            f"data.root={root}",
            *DATA_SETS[data][1],
            *limit,
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={out}",
        ],
    )
    return read_metrics(out)


def evaluations(checkpoints: dict[str, Path], args) -> dict[str, dict[str, dict]]:
    """Row name -> data set -> metrics, in the table's order; the human row last."""
    rows: dict[str, dict[str, dict]] = {}
    for model, path in checkpoints.items():
        for aware in (True, False):
            row = f"{MODEL_NAMES[model]}, {'scale-aware' if aware else 'native scale'}"
            name = f"{model}_{'scale_aware' if aware else 'native'}"
            settings = [f"ckpt_path={path}", f"scale_aware={str(aware).lower()}"]
            rows[row] = {data: evaluation(name, data, settings, args) for data in DATA_SETS}
            print(f"evaluated: {row}", flush=True)
    rows["second observer (human)"] = {
        data: evaluation("second_observer", data, ["second_observer=true"], args) for data in DATA_SETS
    }
    return rows


def cell(metrics: dict, score: str) -> str:
    value = metrics.get(f"test_{score}")
    return "-" if value is None else f"{value:.4f}"


def scale_cell(metrics: dict) -> str:
    """The range of the scale factors the evaluation used (none for the human row)."""
    factors = (metrics.get("scale") or {}).get("factors")
    if not factors:
        return "-"
    low, high = f"{min(factors):.2f}", f"{max(factors):.2f}"
    return low if low == high else f"{low}-{high}"


def report(rows: dict[str, dict[str, dict]]) -> None:
    for data, (title, _) in DATA_SETS.items():
        published = {name: values[data] for name, values in PUBLISHED_F1.items() if data in values}
        print(f"\n{title}, inside the FOV, threshold from each checkpoint:")
        body = [
            [row, *(cell(results[data], score) for score in SCORES), scale_cell(results[data])]
            for row, results in rows.items()
        ]
        print(markdown_table(["model", *SCORES, "scale factors"], body))
        print("published F1 (Idiap bob.ip.binseg): " + "; ".join(f"{k} {v:.3f}" for k, v in published.items()))
    chase = PUBLISHED_F1["U-Net trained on DRIVE"]["chase_db1"]
    print(f"(published, not measured here: U-Net trained on DRIVE, tested on CHASE_DB1: F1 {chase:.3f})")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    print(f"machine: {machine_line()}", flush=True)
    checkpoints = {model: checkpoint(model, args) for model in ("kaggle", "drive")}
    rows = evaluations(checkpoints, args)
    report(rows)
    save_results(
        args.json,
        {
            "quick": args.quick,
            "checkpoints": {k: str(v) for k, v in checkpoints.items()},
            "published_f1": PUBLISHED_F1,
            "rows": rows,
        },
    )
    aware, native = (
        rows[f"{MODEL_NAMES['drive']}, {how}"]["stare"]["test_Dice"] for how in ("scale-aware", "native scale")
    )
    published = PUBLISHED_F1["U-Net trained on DRIVE"]["stare"]
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    print(
        f"STARE Dice of the DRIVE-trained model: scale-aware {aware:.4f}, native scale {native:.4f} "
        f"(published U-Net DRIVE->STARE F1 {published:.3f})"
    )


if __name__ == "__main__":
    main()
