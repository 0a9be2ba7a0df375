"""What every stage of the GPU check shares: the repository, the variable naming the device for tests/gpu,
the sizes of a real and a dry run, and the speed settings measured."""

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVICE_VARIABLE = "RETINA_SEG_CHECK_DEVICE"  # read by tests/gpu/conftest.py


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
