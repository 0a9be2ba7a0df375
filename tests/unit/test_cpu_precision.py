"""The CPU recipe's precision follows the CPU: bf16 autocast only where AMX runs it."""

from retina_seg.config import cpu_has_amx, cpu_precision
from tests.helpers.runs import compose

XEON = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
EPYC = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n"


def test_amx_is_read_from_the_cpu_flags():
    assert cpu_has_amx(XEON) and not cpu_has_amx(EPYC)
    assert not cpu_has_amx("model name\t: amx_bf16 in a name is not a flag\n")


def test_the_recipe_resolves_to_the_precision_of_this_cpu(tmp_path):
    precision = compose(["experiment=kaggle_cpu"], tmp_path).trainer.precision
    assert precision == cpu_precision() == ("bf16-mixed" if cpu_has_amx() else "32-true")
