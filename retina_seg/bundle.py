"""`python -m retina_seg.bundle --ckpt RUN/checkpoints/best.ckpt --name NAME --test LABEL OVERRIDES ... --retrain CMD`:
a checkpoint made into a model that ships with the package (retina_seg/bundled_models/NAME: weights.safetensors,
card.json, card.md; docs/prediction-and-export.md#bundled-models), its card's test scores measured by
retina-seg-eval on each --test set. Exit codes (retina_seg/exit_codes.py): 2 for a bad option, checkpoint or data
set, weights over 2 MB or an existing bundle without --overwrite."""

import argparse
import logging
import re
from pathlib import Path

from .exit_codes import EXIT_BAD_INPUT, SUMMARY, fail

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m retina_seg.bundle", description=__doc__.split("\n\n")[0], epilog=SUMMARY
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="the training run's checkpoints/best.ckpt")
    parser.add_argument("--name", required=True, help="the bundle's name: ckpt_path=bundled:NAME selects it")
    parser.add_argument(
        "--test",
        nargs=2,
        action="append",
        default=[],
        metavar=("LABEL", "OVERRIDES"),
        help='a test set of the card and the retina-seg-eval overrides that select it, e.g. STARE "data=stare '
        'data.root=../shared/data/STARE"; repeat for each set',
    )
    parser.add_argument("--retrain", required=True, help="the command that retrains the checkpoint (for the card)")
    parser.add_argument("--summary", help="the card's one-line summary (default: the sources and test Dice)")
    parser.add_argument("--source", action="append", default=[], help="a training set (default: the run's config)")
    parser.add_argument(
        "--into", type=Path, help="the folder of bundled models (default: $RETINA_SEG_BUNDLED_MODELS or the package's)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a bundle of that name")
    arguments = parser.parse_args(argv)
    if not NAME.match(arguments.name):
        parser.error(f"--name {arguments.name!r}: letters, digits, '.', '_' and '-' only, not starting with . _ -")
    return arguments


def main(argv: list[str] | None = None) -> None:
    from hydra.errors import ConfigCompositionException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    from .config import ConfigError
    from .data.errors import DataError
    from .evaluation.bundling import BundleRequest, bundle_checkpoint
    from .records.bundle import bundled_models_dir
    from .records.checkpoint import CheckpointError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arguments = parse_arguments(argv)
    request = BundleRequest(
        checkpoint=arguments.ckpt,
        name=arguments.name,
        folder=(arguments.into or bundled_models_dir()) / arguments.name,
        test_sets=dict(arguments.test),
        retrain_command=arguments.retrain,
        summary=arguments.summary,
        sources=tuple(arguments.source),
        overwrite=arguments.overwrite,
    )
    try:
        bundle_checkpoint(request)
    except (CheckpointError, ConfigError, DataError) as error:
        fail("retina_seg.bundle", error, EXIT_BAD_INPUT)
    except (ConfigCompositionException, OverrideParseException, OmegaConfBaseException) as error:  # a --test's
        fail("retina_seg.bundle", ConfigError(f"--test overrides: {error}"), EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
