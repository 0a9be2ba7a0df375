"""One printed line per log record. Lightning's package logger has a console handler of its own (``INFO: ...``)
and also hands every record on to the root logger, which Hydra configures for each command (its console format
and the run's log file), so without this each Lightning line would be printed twice."""

import logging

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


def leave_lightning_lines_to_root() -> None:
    """Once Lightning is imported and the root logger has handlers: Lightning's loggers lose their own and pass
    every record to the root's, so each line is printed once, in Hydra's format, and reaches the log file."""
    if not logging.getLogger().handlers:
        return
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
