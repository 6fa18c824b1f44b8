"""The one error type users see: bad input, said plainly (file, line, field, what was expected)."""


class DataError(Exception):
    """Input that cannot be used as it is. The CLI prints the message without a traceback."""
