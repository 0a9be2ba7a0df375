"""Reading Comet offline archives back, and the rules that decide what reaches Comet (real comet_ml)."""

import io
import logging
import zipfile

import pytest

from retina_seg.config import ConfigError
from retina_seg.reporting.comet_archives import ArchiveError, read_archive_records
from retina_seg.tracking.comet import CometRunLogger, CometStartError, choose_mode
from retina_seg.tracking.secrets import mask_in_comet_logs


def test_a_failed_fit_leaves_an_archive_read_as_failed_with_its_best_epoch(tmp_path):
    logger = CometRunLogger(run_dir=tmp_path, mode="offline")
    logger.experiment.set_name("5")
    logger.log_hyperparams({"trainer": {"max_epochs": 3}, "data": {"batch_size": 2}, "optimizer": {"lr": 0.01}})
    for epoch, (iou, loss) in enumerate([(0.4, 0.8), (0.3, 0.7)]):
        logger.log_metrics({"val_IoU": iou, "val_loss": loss, "train_loss_step": 9.0, "epoch": epoch}, step=10 * epoch)
    logger.finalize("failed")  # what Lightning calls when fit raises
    [record] = read_archive_records(tmp_path)
    assert {k: v for k, v in record.items() if k != "archive"} == {
        "job_id": "5",
        "status": "failed",
        "epochs": 3,
        "batch_size": 2,
        "learning_rate": 0.01,
        "val_IoU": 0.4,
        "val_loss": 0.8,
        "test_IoU": None,
        "test_loss": None,
        "best_epoch": None,
        "threshold": None,
        "git_commit": None,
        "history": [{"epoch": 0, "val_IoU": 0.4, "val_loss": 0.8}, {"epoch": 1, "val_IoU": 0.3, "val_loss": 0.7}],
        "config": {"trainer.max_epochs": 3, "data.batch_size": 2, "optimizer.lr": 0.01},
        "group_key": None,  # logged by start_run, which a fit that never started did not reach
        "sweep": None,
    }


def test_zips_that_are_not_comet_archives_are_skipped_and_broken_ones_named(tmp_path):
    with zipfile.ZipFile(tmp_path / "data.zip", "w") as bundle:
        bundle.writestr("image.png", b"not an experiment")
    assert read_archive_records(tmp_path) == []
    broken = tmp_path / "run" / "comet" / "broken.zip"
    broken.parent.mkdir(parents=True)
    with zipfile.ZipFile(broken, "w") as bundle:
        bundle.writestr("experiment.json", "{}")
        bundle.writestr("messages.json", '{"type": "log_other", "payload": {"key": "Name", "value": "1"}}\nnot json\n')
    with pytest.raises(ArchiveError, match=rf"{broken}: messages.json line 2 is not a Comet message"):
        read_archive_records(tmp_path)
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArchiveError, match=rf"{broken}: cannot be read as a Comet archive"):
        read_archive_records(broken)


@pytest.mark.parametrize(
    "mode, environ, online",
    [
        ("auto", {"COMET_API_KEY": "k"}, True),
        ("auto", {}, False),
        ("auto", {"COMET_API_KEY": ""}, False),
        ("offline", {"COMET_API_KEY": "k"}, False),
        ("online", {"COMET_API_KEY": "k"}, True),
    ],
)
def test_online_offline_decision_rule(mode, environ, online):
    assert choose_mode(mode, environ)[0] is online


def test_mode_errors_name_the_key_and_the_fix():
    with pytest.raises(CometStartError, match="logger.comet.mode=online needs COMET_API_KEY in the environment"):
        choose_mode("online", {})
    with pytest.raises(ConfigError, match=r"logger.comet.mode='cloud' must be one of \['auto', 'online', 'offline'\]"):
        choose_mode("cloud", {})


def test_a_rejected_key_is_masked_in_comet_messages():
    import comet_ml  # noqa: F401  (after retina_seg.tracking.comet set its environment defaults)

    key = "retinaSegRejectedKey0123456789"
    mask_in_comet_logs(key)
    [console] = [h for h in logging.getLogger("comet_ml").handlers if type(h) is logging.StreamHandler]
    written = io.StringIO()
    previous = console.setStream(written)
    try:
        logging.getLogger("comet_ml.connection").error("The given API key '%s' is invalid on '%s'", key, "server")
    finally:
        console.setStream(previous)
    assert "The given API key '***' is invalid on 'server'" in written.getvalue()
    assert key not in written.getvalue()
