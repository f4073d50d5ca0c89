"""Errors meant for the person at the keyboard, not for a debugger.

Anything derived from :class:`UserFacingError` is caught by the CLI entry
(:func:`shared.cli.cli_main`) and printed as one paragraph, without a traceback:
it must say which file, line or key is wrong and what to do about it.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """An error whose message alone tells the user what went wrong and how to fix it."""


class DatasetNotFoundError(UserFacingError, FileNotFoundError):
    """A dataset file or folder is missing."""


class CorruptDataError(UserFacingError, ValueError):
    """A dataset file exists but is truncated or not in the expected format."""
