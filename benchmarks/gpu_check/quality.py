"""Stage 3: quality against time: the `kaggle_gpu` recipe and the reference's best run under
`trainer.max_time`, their test IoU (under both protocols) and wall time."""

import subprocess
import sys
import time
from pathlib import Path

from benchmarks.gpu_check.scales import REPO_ROOT, Scale

# The reference's best row (sweeps/reference/job_18808.yaml): its network, 1000 epochs, batch 4, Adam 1e-4.
REFERENCE_JOB = ["+reference=job_18808"]


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
