"""The CPU recipe's precision follows the CPU: bf16 autocast only where bf16 runs in hardware."""

import pytest

from retina_seg.launch import resources
from retina_seg.launch.resources import cpu_bf16_flags
from tests.helpers.runs import compose

XEON = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
EPYC = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n"
OLDER = "processor\t: 0\nflags\t\t: fpu avx2 fma\nmodel name\t: amx_bf16 in a name is not a flag\n"


def test_bf16_units_are_read_from_the_cpu_flags():
    assert cpu_bf16_flags(XEON) == ["amx_bf16", "avx512_bf16"]
    assert cpu_bf16_flags(EPYC) == ["avx512_bf16"]
    assert cpu_bf16_flags(OLDER) == []


@pytest.mark.parametrize(
    "cpuinfo, precision", [(XEON, "bf16-mixed"), (EPYC, "bf16-mixed"), (OLDER, "32-true"), (None, "32-true")]
)
def test_the_recipe_resolves_to_bf16_only_on_a_cpu_with_bf16_units(cpuinfo, precision, tmp_path, monkeypatch):
    """The CPU recipe's precision as composed on a machine with each CPU (None: no /proc/cpuinfo to read)."""
    described = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        described.write_text(cpuinfo)
    monkeypatch.setattr(resources, "CPUINFO", described)
    assert compose(["experiment=kaggle_cpu"], tmp_path).trainer.precision == precision
