"""The CPU recipe's precision follows the CPU: bf16 autocast only where bf16 runs in hardware."""

from retina_seg.launch.resources import cpu_bf16_flags, cpu_precision
from tests.helpers.runs import compose

XEON = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
EPYC = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n"
OLDER = "processor\t: 0\nflags\t\t: fpu avx2 fma\nmodel name\t: amx_bf16 in a name is not a flag\n"


def test_bf16_units_are_read_from_the_cpu_flags():
    assert cpu_bf16_flags(XEON) == ["amx_bf16", "avx512_bf16"]
    assert cpu_bf16_flags(EPYC) == ["avx512_bf16"]
    assert cpu_bf16_flags(OLDER) == []


def test_the_recipe_resolves_to_the_precision_of_this_cpu(tmp_path):
    precision = compose(["experiment=kaggle_cpu"], tmp_path).trainer.precision
    assert precision == cpu_precision() == ("bf16-mixed" if cpu_bf16_flags() else "32-true")
