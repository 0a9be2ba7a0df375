"""Every retina-seg-* command, run as a user runs it, follows retina_seg/exit_codes.py: a bad config key, a bad
value and an unusable checkpoint exit 2 with a message naming the key or the file. No training: a few bytes of
garbage are the checkpoint."""

import pytest

from retina_seg.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED
from tests.helpers.runs import TINY_RUN, run_main

GARBAGE = b"\x80\x04not a checkpoint at all"

# command -> its required arguments ({tmp}: the test's folder, {ckpt}: the garbage checkpoint there).
REQUIRED = {
    "retina_seg.train": ["logger=none"],
    "retina_seg.eval": ["ckpt_path={ckpt}"],
    "retina_seg.predict": ["ckpt_path={ckpt}", "input={tmp}/photos", "output={tmp}/predictions"],
    "retina_seg.export": ["ckpt_path={ckpt}", "output={tmp}/exported"],
}

# (command, arguments besides the required ones, what stderr must say)
BAD_INPUT = [
    ("retina_seg.train", ["trainer.max_epochz=1"], "full_key: trainer.max_epochz"),
    ("retina_seg.train", ["seed=abc"], "full_key: seed"),
    ("retina_seg.train", ["trainer.max_epochs=0"], "invalid config: trainer.max_epochs=0 must be an integer >= 1"),
    ("retina_seg.train", ["resume={ckpt}"], "checkpoint {ckpt}: corrupt or not a PyTorch checkpoint"),
    ("retina_seg.eval", ["treshold=0.5"], "full_key: treshold"),
    ("retina_seg.eval", ["threshold=1.5"], "invalid config: threshold=1.5 must be null (the checkpoint's) or a number"),
    ("retina_seg.eval", [], "checkpoint {ckpt}: corrupt or not a PyTorch checkpoint"),
    ("retina_seg.predict", ["tile.sise=256"], "full_key: tile.sise"),
    ("retina_seg.predict", ["tile.overlap=300"], "invalid config: tile.overlap=300 must be an integer >= 0"),
    ("retina_seg.predict", [], "checkpoint {ckpt}: corrupt or not a PyTorch checkpoint"),
    ("retina_seg.export", ["formatz=[onnx]"], "full_key: formatz"),
    ("retina_seg.export", ["formats=[tflite]"], "invalid config: formats=['tflite'] must be a non-empty list of"),
    ("retina_seg.export", [], "checkpoint {ckpt}: corrupt or not a PyTorch checkpoint"),
]


@pytest.mark.parametrize("command, arguments, message", BAD_INPUT)
def test_bad_input_exits_2_naming_the_key_or_file(command, arguments, message, tmp_path):
    ckpt = tmp_path / "best.ckpt"
    ckpt.write_bytes(GARBAGE)
    (tmp_path / "photos").mkdir()
    fill = lambda text: text.format(tmp=tmp_path, ckpt=ckpt)  # noqa: E731
    args = [fill(a) for a in [*REQUIRED[command], *arguments]]
    result = run_main(command, *args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, timeout=300)
    assert result.returncode == EXIT_BAD_INPUT, result.stderr[-3000:]
    assert fill(message) in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "added, message",
    [
        ("+optimizer.lrr=0.1", "unknown key optimizer.lrr: torch.optim.Adam takes amsgrad, betas,"),
        ("+model.widht=4", "unknown key model.widht: retina_seg.models.unet.UNet takes base_width, batch_norm,"),
    ],
)
def test_an_added_key_its_target_does_not_take_exits_2_before_training(added, message, tmp_path):
    """A typo in an added key is bad input: one line naming the key and the ones its _target_ takes, and
    nothing trained (no checkpoint folder)."""
    run_dir = tmp_path / "run"
    result = run_main("retina_seg.train", *TINY_RUN, "logger=none", added, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == EXIT_BAD_INPUT, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"retina-seg-train: error: {message}"), result.stderr[-3000:]
    assert not (run_dir / "checkpoints").exists()


def test_report_bad_option_or_path_exits_2_and_a_report_it_cannot_write_exits_1(tmp_path):
    option = run_main("retina_seg.report", str(tmp_path), "--colour", cwd=tmp_path)
    assert option.returncode == EXIT_BAD_INPUT and "unrecognized arguments: --colour" in option.stderr
    missing = run_main("retina_seg.report", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == EXIT_BAD_INPUT and f"{tmp_path / 'nowhere'}: no such folder" in missing.stderr
    (tmp_path / "sweep" / "0" / ".hydra").mkdir(parents=True)  # a run that has not begun: the table has a row
    taken = tmp_path / "taken.txt"
    taken.write_text("someone's file")
    unwritable = run_main("retina_seg.report", str(tmp_path / "sweep"), "--out", str(taken), cwd=tmp_path)
    assert unwritable.returncode == EXIT_FAILED and f"cannot write the report to {taken}" in unwritable.stderr
    assert taken.read_text() == "someone's file"
