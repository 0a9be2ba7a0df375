"""Secret hygiene: a value that must never be printed is masked in the log messages that could carry it."""

import logging

MASK = "***"


class SecretMask(logging.Filter):
    """Replaces a secret in a record's message and traceback text before any handler writes it."""

    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, MASK), None
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            if self.secret in trace:
                record.exc_text, record.exc_info = trace.replace(self.secret, MASK), None
        return True


def mask_in_comet_logs(secret: str | None) -> None:
    """comet_ml prints a rejected API key in clear ("The given API key '...' is invalid"); a key that is
    one typo away from the real one is nearly the real one, so every handler of its logger masks it."""
    if not secret:
        return
    for handler in logging.getLogger("comet_ml").handlers:
        if not any(isinstance(f, SecretMask) and f.secret == secret for f in handler.filters):
            handler.addFilter(SecretMask(secret))
