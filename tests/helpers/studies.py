"""A search's sweep folder as the Optuna sweeper leaves it, without training: a real Optuna study (journal file
or SQLite database) with completed, pruned, failed and running trials, each trial's run folder written with the
run-folder contract's own writers, and study.json; for the report's study view."""

import json
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from retina_seg.records.run_folder import RunStatus, write_epoch_table, write_metrics
from retina_seg.records.study_record import STUDY_JOURNAL, STUDY_JSON

STUDY_NAME = "lr-and-loss"
# Each trial: its learning rate, its loss and how it ended (a value for a completed one).
TRIALS = [
    (1e-3, "bce_dice", TrialState.COMPLETE, 0.71),
    (1e-2, "bce_lovasz", TrialState.COMPLETE, 0.52),
    (3e-3, "bce_lovasz", TrialState.COMPLETE, 0.78),
    (1e-4, "bce_dice", TrialState.COMPLETE, 0.60),
    (5e-2, "bce_dice", TrialState.PRUNED, None),
    (2e-2, "bce_lovasz", TrialState.FAIL, None),
    (4e-3, "bce_dice", TrialState.RUNNING, None),
]
BEST_TRIAL = 2
PRUNED_TRIAL, PRUNED_AT_EPOCH, PRUNED_VAL_IOU = 4, 1, 0.31
RUN_STATUS = {
    TrialState.COMPLETE: RunStatus.COMPLETED,
    TrialState.PRUNED: RunStatus.PRUNED,
    TrialState.FAIL: RunStatus.FAILED,
    TrialState.RUNNING: RunStatus.RUNNING,
}


def write_study(sweep: Path, storage_url: str | None, trials=TRIALS, recorded_storage: str | None = None) -> Path:
    """The study in ``storage_url`` (None: the sweep folder's journal file), its trials' run folders, and
    study.json naming ``recorded_storage`` (default: ``storage_url``, as the sweeper writes it unmasked)."""
    sweep.mkdir(parents=True, exist_ok=True)
    storage = storage_url or JournalStorage(JournalFileBackend(str(sweep / STUDY_JOURNAL)))
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize")
    for lr, loss, state, value in trials:
        study.enqueue_trial({"lr": lr, "loss": loss})
        trial = study.ask()
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.suggest_categorical("loss", ["bce_dice", "bce_lovasz"])
        if state != TrialState.RUNNING:
            study.tell(trial, value, state=state)
        write_trial_run(sweep / str(trial.number), trial.number, lr, loss, RUN_STATUS[state], value)
    record = {
        "storage": recorded_storage or storage_url,
        "study_name": STUDY_NAME,
        "direction": "maximize",
        "metric": "val_IoU",
        "n_trials": 8,
    }
    (sweep / STUDY_JSON).write_text(json.dumps(record))
    return sweep / STUDY_JSON


def write_trial_run(run_dir: Path, number: int, lr: float, loss: str, status: str, value: float | None) -> None:
    pruned = status == RunStatus.PRUNED
    epochs = PRUNED_AT_EPOCH + 1 if pruned else 3
    run_dir.mkdir(parents=True)
    write_epoch_table(
        run_dir, [{"epoch": e, "train_loss": 0.5, "val_loss": 0.4, "val_IoU": 0.3} for e in range(epochs)]
    )
    val_iou = PRUNED_VAL_IOU if pruned else value
    write_metrics(
        run_dir,
        {
            "job_id": str(number),
            "status": status,
            "epochs": 3,
            "batch_size": 4,
            "learning_rate": lr,
            "val_IoU": val_iou,
            "val_loss": 0.4,
            "test_IoU": None if value is None else value - 0.02,
            "test_loss": None if value is None else 0.41,
            "config": {"seed": 0, "optimizer": {"lr": lr}, "loss": {"name": loss}},
            **({"pruned_at_epoch": PRUNED_AT_EPOCH} if pruned else {}),
            **({"error": "RuntimeError: diverged"} if status == RunStatus.FAILED else {}),
        },
    )
