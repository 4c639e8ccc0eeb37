"""User-facing errors.

Every problem with a user's input (a missing file, a wrong shape, an option out of range)
is raised as :class:`SparsestError` with a one-line message that names the file, field or
option. The command line prints that line and exits with status 2, never a traceback.
"""

from __future__ import annotations


class SparsestError(Exception):
    """A problem with the user's input, explained in one line.

    The message names the offending file, field or option, e.g.
    ``"signals.csv: 3 values are inf; use NaN for missing readings"``.
    """


class DataError(SparsestError, ValueError):
    """A data file is missing, unreadable, has the wrong shape or holds invalid values."""


class ConfigError(SparsestError, ValueError):
    """An option or configuration key is unknown or out of range."""
