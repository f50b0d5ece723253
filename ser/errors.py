"""Errors the stages and the CLI turn into one-line messages instead of tracebacks."""

import functools
import sys


class SerError(Exception):
    """A problem with the user's input (params, data, files), reported as one line."""


class ConfigError(SerError):
    """An invalid value in params.yaml; the message names the key."""


class DataError(SerError):
    """Unusable input data; the message names the file or folder."""


def one_line_errors(main):
    """Run ``main`` and turn ``SerError`` (and Ctrl-C) into a one-line message and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except SerError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
