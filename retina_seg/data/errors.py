"""The one exception type for bad input data."""


class DataError(ValueError):
    """Bad or missing data files; the message names every offending file or folder and what is wrong.

    A ValueError subclass so callers that validate configuration can catch both the same way.
    """
