"""Errors that end a command with a clear one-line message and a documented exit code.

Exit codes (documented in the README):
    0  success / the data conforms
    1  data problems: syntax errors, SHACL violations, failed QC checks, drift under ``fmt --check``
    2  usage or environment errors: bad options, missing folders, unknown views, unreachable servers
    3  an endpoint refused or failed the request (HTTP 4xx/5xx after retries)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_REMOTE = 3


class EmkgError(Exception):
    """An expected failure: its message is shown to the user as it is, without a traceback."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(EmkgError):
    """Bad command-line input or project layout."""

    exit_code = EXIT_USAGE


class DataError(EmkgError):
    """The sources are not valid (syntax errors, failed validation)."""

    exit_code = EXIT_DATA


class RemoteError(EmkgError):
    """A SPARQL endpoint could not be used."""

    exit_code = EXIT_REMOTE
