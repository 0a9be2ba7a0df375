"""The one error the cluster raises."""


class SlurmError(RuntimeError):
    """The cluster could not be brought up (the message carries the tail of the relevant log)."""
