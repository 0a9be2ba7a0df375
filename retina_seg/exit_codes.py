"""The exit codes of every retina-seg-* command (train, eval, predict, export, report).

0  success.
1  the input was usable and the work failed: a run that crashed or filled its disk, some photographs that
   could not be predicted (listed), an export that does not match the PyTorch model, a run or sweep folder
   held by another run (wait for it or choose another folder). Trying again may succeed.
2  bad input, refused before any work: an unknown config key or group, a wrong type, a value out of range, a
   missing required value, an unusable or corrupt checkpoint, a data folder that is missing or malformed, an
   input path that holds nothing to work on, inputs every one of which failed, an output folder that already
   holds another command's results. The message names the key or the file; the same command fails
   again until it is changed.

A sweep (``retina-seg-train -m``) exits 1 when one of its jobs failed.
"""

import functools
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

# The help text's line, for Hydra's --help footer (conf/hydra/default.yaml) and retina-seg-report --help.
SUMMARY = (
    "Exit codes: 0 success; 2 bad input or config (unknown key, wrong type or value, unusable checkpoint, "
    "missing data), refused before any work; 1 the work started and failed."
)


def fail(program: str, error: Exception, code: int) -> NoReturn:
    """End the command with ``code`` and the one-line message ``error`` (no traceback: it names the problem)."""
    print(f"{program}: error: {error}", file=sys.stderr)
    raise SystemExit(code) from None


_REFUSALS = (ConfigCompositionException, OverrideParseException, OmegaConfBaseException)


def refusals_exit_bad_input(hydra_main: Callable[[], Any]) -> Callable[[], Any]:
    """A ``@hydra.main`` entrypoint whose config refusals exit 2. Hydra prints every error it catches and exits
    1; the error it handled is the exit's context. Composing the config (unknown key or group, wrong type, bad
    override) or reading it (a missing required value, a broken interpolation) failed: bad input. Building an
    object from the config (Hydra's InstantiationException) may fail for any reason and stays 1."""

    @functools.wraps(hydra_main)
    def main() -> Any:
        try:
            return hydra_main()
        except SystemExit as exit_:
            refused = isinstance(exit_.__context__, _REFUSALS)
            if exit_.code == EXIT_FAILED and refused:
                raise SystemExit(EXIT_BAD_INPUT) from None
            raise

    return main
