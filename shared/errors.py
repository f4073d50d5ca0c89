"""Errors meant for the person at the keyboard, not for a debugger.

Anything derived from :class:`UserFacingError` is caught by the CLI entry
(:func:`shared.cli.cli_main`) and printed as one paragraph, without a traceback:
it must say which file, line or key is wrong and what to do about it.
"""

from __future__ import annotations

import pickle
import zipfile
import zlib

# What reading a truncated or damaged .npz / .npy can raise (numpy's zip reader raises BadZipFile, which is neither
# an OSError nor a ValueError; a damaged compressed member raises zlib.error, a missing key KeyError).
UNREADABLE_ARRAY_FILE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error,
                         pickle.UnpicklingError)


class UserFacingError(Exception):
    """An error whose message alone tells the user what went wrong and how to fix it."""


class DatasetNotFoundError(UserFacingError, FileNotFoundError):
    """A dataset file or folder is missing."""


class CorruptDataError(UserFacingError, ValueError):
    """A dataset file exists but is truncated or not in the expected format."""


def user_message(err: BaseException) -> str:
    """The message of ``err`` as one paragraph. An error re-raised from a DataLoader worker carries the
    worker's traceback in its message; only the original message is kept."""
    text = str(err)
    if "Original Traceback" in text:
        marker = f"{type(err).__name__}: "
        text = text[text.rfind(marker) + len(marker):] if marker in text else text.splitlines()[-1]
    return " ".join(text.split())
