"""The cross-camera table: leave-one-set-out over DRIVE, STARE and CHASE_DB1, and DRIVE alone, beside the second
observer, the published numbers and the targets of issue 31.

Four trainings of `retina-seg-train experiment=cameras_cpu` (the sets at one FOV diameter, augmentation=camera,
a time budget of --budget-s each), each a run folder under --out (a completed one is reused, so an interrupted
table resumes); extra Hydra overrides (positional) go to every training:
  * without_drive, without_stare, without_chase_db1: trained on the other two sets ('~data.source.sources.<set>');
  * drive_only: trained on DRIVE alone (STARE and CHASE_DB1 left out).
Each best checkpoint is scored by `retina-seg-eval` against the first observer inside the FOV, at the threshold
stored in it (chosen on its training sources' pooled validation), scale-aware, with its own test-time flips:
  * a left-out set on all its photographs (`data=<set> data.source.split=all`), by the model that never saw it;
  * the DRIVE-only model on DRIVE's test split, and on all photographs of STARE and of CHASE_DB1.
`retina-seg-eval second_observer=true` scores each set's second observer against the first: on DRIVE's test
split (its training photographs have no second observer), on all of STARE and CHASE_DB1.

Prints one table per set with the published F1 of Idiap's bob.ip.binseg beside, the targets met or missed, and
ends with `leave-one-set-out Dice (trained on the other two): DRIVE a, STARE b, CHASE_DB1 c`.
--quick trains each model for one epoch on a few photographs per set (a network 4 channels wide, a 128-pixel FOV)
and evaluates 2 photographs per set: a check of the plumbing, not of quality.
"""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import OmegaConf

from benchmarks.common import argument_parser, fail, machine_line, markdown_table, run_command, save_results
from retina_seg.launch.resources import cpu_bf16_flags
from retina_seg.records.run_folder import completed_metrics, read_metrics

SCORES = ("IoU", "Dice", "clDice", "AUC", "sensitivity", "specificity")
SETS = {"drive": "DRIVE", "stare": "STARE", "chase_db1": "CHASE_DB1"}
# Each training: the sets it leaves out of experiment=cameras_cpu's three.
TRAININGS = {
    "without_drive": ("drive",),
    "without_stare": ("stare",),
    "without_chase_db1": ("chase_db1",),
    "drive_only": ("stare", "chase_db1"),
}
SECOND_OBSERVER = "second_observer"
# Per set, in the table's order: (who is scored, split). DRIVE's second observer covers its test split only.
EVALUATIONS = {
    "drive": [("without_drive", "all"), ("drive_only", "test"), (SECOND_OBSERVER, "test")],
    "stare": [("without_stare", "all"), ("drive_only", "all"), (SECOND_OBSERVER, "all")],
    "chase_db1": [("without_chase_db1", "all"), ("drive_only", "all"), (SECOND_OBSERVER, "all")],
}
# Idiap bob.ip.binseg result tables, F1 (= Dice) inside the FOV.
PUBLISHED_F1 = {
    "second observer": {"drive": 0.788, "stare": 0.759},
    "U-Net trained on DRIVE": {"stare": 0.807, "chase_db1": 0.752},
    "U-Net trained on the other sets, target left out": {"stare": 0.806, "chase_db1": 0.779},
}
PUBLISHED_ROW = {
    SECOND_OBSERVER: "second observer",
    "drive_only": "U-Net trained on DRIVE",
    **{name: "U-Net trained on the other sets, target left out" for name in TRAININGS if name.startswith("without_")},
}
# Issue 31's targets: (model, set, least Dice inside the FOV against the first observer).
TARGETS = [
    ("drive_only", "stare", 0.78),
    ("drive_only", "chase_db1", 0.75),
    ("without_stare", "stare", 0.80),
    ("without_chase_db1", "chase_db1", 0.78),
    ("drive_only", "drive", 0.822),
]
# --quick: a few photographs per set (limit_train, n_val: whole children for CHASE_DB1), one test photograph each.
QUICK_SOURCES = {"drive": (3, 1), "stare": (3, 1), "chase_db1": (4, 2)}
QUICK_TRAINING = [
    "model.base_width=4",
    "data.fov_diameter=128",
    "augmentation.train.crop.height=64",
    "augmentation.train.crop.width=64",
    "data.train_repeats=1",
    "data.batch_size=2",
    "trainer.max_epochs=1",
    "trainer.check_val_every_n_epoch=1",
    "trainer.enable_progress_bar=false",
    "module.flip_tta=false",  # its evaluations too: they predict at the checkpoint's own flips
    "test=false",  # the table's test scores are the evaluations'
]
QUICK_PHOTOGRAPHS = 2


def parse_args(argv: list[str] | None):
    parser = argument_parser(__doc__.splitlines()[0])
    for name, title in SETS.items():
        flag = f"--{name.replace('_', '-')}-root"
        parser.add_argument(flag, type=Path, default=Path(f"../shared/data/{title}"), help=f"{title}'s folder")
    parser.add_argument("--budget-s", type=int, default=1800, help="each training's time budget in seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of every training")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmark-runs/cross_dataset"),
        help="one run folder per training (reused when completed) and the evaluations (eval/)",
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every training")
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        fail(f"--budget-s must be > 0 seconds, got {args.budget_s}")
    for name in SETS:
        if not root(args, name).is_dir():
            fail(f"--{name.replace('_', '-')}-root {root(args, name)} is not a folder")
    return args


def root(args, data: str) -> Path:
    return getattr(args, f"{data}_root")


def hard_stop(budget_s: int) -> str:
    """trainer.max_time (DD:HH:MM:SS) at the budget: the recipe's stop behind its clock, moved with it."""
    minutes, seconds = divmod(budget_s, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days:02d}:{hours:02d}:{minutes:02d}:{seconds:02d}"


def trained_on(model: str) -> list[str]:
    return [data for data in SETS if data not in TRAININGS[model]]


def training_overrides(model: str, run_dir: Path, args) -> list[str]:
    """experiment=cameras_cpu with the model's sets left out, the kept ones pointed at their folders."""
    kept = trained_on(model)
    return [
        "experiment=cameras_cpu",
        *(f"~data.source.sources.{data}" for data in TRAININGS[model]),
        *(f"data.source.sources.{data}.root={root(args, data).resolve()}" for data in kept),
        f"callbacks.time_budget.budget_s={args.budget_s}",
        f"trainer.max_time={hard_stop(args.budget_s)}",
        f"seed={args.seed}",
        *(quick_training(kept) if args.quick else []),
        *args.overrides,
        f"hydra.run.dir={run_dir}",
    ]


def quick_training(kept: list[str]) -> list[str]:
    """--quick: a tiny network for one epoch on a few photographs of each kept set."""
    few = []
    for data in kept:
        limit_train, n_val = QUICK_SOURCES[data]
        few += [f"data.source.sources.{data}.limit_train={limit_train}", f"data.source.sources.{data}.n_val={n_val}"]
        few.append(f"data.source.sources.{data}.limit_test=1")
    return [*QUICK_TRAINING, *few]


def train(model: str, args) -> dict:
    """The completed training run in --out, trained first when missing; its metrics.json."""
    run_dir = (args.out / model).resolve()
    metrics = completed_metrics(run_dir)
    if metrics is None:
        print(f"{model}: training in {run_dir}", flush=True)
        run_command("retina_seg.train", training_overrides(model, run_dir, args))
        metrics = completed_metrics(run_dir)
        if metrics is None:
            fail(f"{model}: {run_dir / 'metrics.json'} is not a completed run")
    else:
        check_same_training(model, run_dir, args)
        print(f"{model}: reusing the completed run in {run_dir}", flush=True)
    return metrics


def check_same_training(model: str, run_dir: Path, args) -> None:
    """A completed run is reused only when it was trained with this table's overrides (not a --quick run's, not
    another budget's): otherwise stop, naming the folder and what differs."""
    recorded = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    wanted = [o for o in training_overrides(model, run_dir, args) if not o.startswith("hydra.")]
    if recorded != wanted:
        differ = sorted(set(recorded) ^ set(wanted))
        fail(f"{run_dir} was trained with other overrides ({', '.join(differ)}): use another --out or remove it")


def evaluate(who: str, data: str, split: str, args) -> dict:
    """One `retina-seg-eval` of a model's best checkpoint (or of the second observer) on a set's split."""
    out = (args.out / "eval" / f"{who}_{data}_{split}").resolve()
    scored = (
        ["second_observer=true"]
        if who == SECOND_OBSERVER
        else [f"ckpt_path={(args.out / who).resolve() / 'checkpoints' / 'best.ckpt'}"]
    )
    run_command(
        "retina_seg.eval",
        [
            *scored,
            f"data={data}",
            f"data.root={root(args, data).resolve()}",
            *(["data.source.split=all"] if split == "all" else []),
            *([f"data.source.limit_test={QUICK_PHOTOGRAPHS}"] if args.quick else []),
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={out}",
        ],
    )
    return read_metrics(out)


def row_name(who: str) -> str:
    if who == SECOND_OBSERVER:
        return "second observer (human)"
    return "trained on " + " + ".join(SETS[data] for data in trained_on(who))


def photographs(metrics: dict, split: str) -> str:
    """The split and how many photographs were scored."""
    count = metrics.get("images") or len(metrics["scale"]["factors"])
    return f"{split}, {count}"


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def published(who: str, data: str) -> float | None:
    return PUBLISHED_F1[PUBLISHED_ROW[who]].get(data)


def target_rows(rows: dict[str, dict[str, dict]]) -> list[dict]:
    """Each target with the Dice measured for it and whether it is met."""
    results = []
    for model, data, least in TARGETS:
        split = dict(EVALUATIONS[data])[model]
        dice = rows[data][model]["test_Dice"]
        name = f"{row_name(model)} -> {SETS[data]} ({'all' if split == 'all' else split})"
        results.append(
            {"target": name, "model": model, "data": data, "least": least, "Dice": dice, "met": dice >= least}
        )
    return results


def report(trainings: dict[str, dict], rows: dict[str, dict[str, dict]], targets: list[dict]) -> None:
    print("\nTrainings (experiment=cameras_cpu):")
    print(
        markdown_table(
            ["model", "trained on", "epochs", "best epoch", "threshold", "val Dice (pooled)", "training s"],
            [
                [
                    model,
                    row_name(model).removeprefix("trained on "),
                    m.get("epochs"),
                    m.get("best_epoch"),
                    cell(m.get("threshold")),
                    cell(m.get("val_Dice")),
                    m.get("wall_time_s"),
                ]
                for model, m in trainings.items()
            ],
        )
    )
    for data, title in SETS.items():
        print(f"\n{title}, inside the FOV, first observer, threshold from each checkpoint:")
        body = [
            [
                row_name(who),
                photographs(rows[data][who], split),
                *(cell(rows[data][who].get(f"test_{score}")) for score in SCORES),
                cell(published(who, data)),
            ]
            for who, split in EVALUATIONS[data]
        ]
        print(markdown_table(["model", "photographs", *SCORES, "published F1"], body))
    print("\nTargets (Dice inside the FOV, first observer):")
    print(
        markdown_table(
            ["target", "Dice", "at least", "met"],
            [[t["target"], cell(t["Dice"]), f"{t['least']:.3f}", "met" if t["met"] else "missed"] for t in targets],
        )
    )
    print("published F1: Idiap bob.ip.binseg; '-' where it publishes none")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    bf16 = cpu_bf16_flags()
    print(f"machine: {machine_line()}", flush=True)
    print(f"bf16 in hardware: {', '.join(bf16) if bf16 else 'no (the recipe trains in fp32)'}", flush=True)
    trainings = {model: train(model, args) for model in TRAININGS}
    rows = {
        data: {who: evaluate(who, data, split, args) for who, split in pairs} for data, pairs in EVALUATIONS.items()
    }
    targets = target_rows(rows)
    report(trainings, rows, targets)
    save_results(
        args.json,
        {
            "quick": args.quick,
            "budget_s": args.budget_s,
            "overrides": args.overrides,
            "cpu_bf16_flags": bf16,
            "runs": {model: str((args.out / model).resolve()) for model in TRAININGS},
            "trainings": trainings,
            "published_f1": PUBLISHED_F1,
            "targets": targets,
            "rows": rows,
        },
    )
    left_out = ", ".join(f"{SETS[data]} {rows[data][f'without_{data}']['test_Dice']:.4f}" for data in SETS)
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    print(f"leave-one-set-out Dice (trained on the other two): {left_out}")


if __name__ == "__main__":
    main()
