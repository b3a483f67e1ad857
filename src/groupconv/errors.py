"""The package's exception type and its warning categories.

Every error a user can cause with bad input is a :class:`GroupConvError` whose message is
one line and names the offending value. The CLI turns it into ``groupconv: error: ...``
on stderr and exit code 2, with no traceback.

Every warning the library issues is a :class:`GroupConvWarning` (a ``UserWarning``), in a
named category that ``warnings.filterwarnings`` can silence, e.g.::

    import warnings
    from groupconv.errors import DeadChannelsWarning
    warnings.filterwarnings("ignore", category=DeadChannelsWarning)

The CLI prints one line per category with a count (``-v`` prints each, ``-q`` none).
"""

from __future__ import annotations

__all__ = [
    "GroupConvError",
    "GroupConvWarning",
    "UserModelError",
    "DeadChannelsWarning",
    "UnmeasuredKernelWarning",
    "ExportWarning",
    "CalibrationWarning",
]


class GroupConvError(ValueError):
    """Bad input to groupconv (a one-line message naming the bad value)."""


class UserModelError(GroupConvError):
    """The user's own code (a model or data factory, a module's import, a model's ``forward``)
    raised, or called ``sys.exit``: the message names the model (or the file) and the
    original error, on one line."""


class GroupConvWarning(UserWarning):
    """The base of every warning groupconv issues."""


class DeadChannelsWarning(GroupConvWarning, RuntimeWarning):
    """A least-squares fit (GC/BGC approximation) whose regressors are linearly dependent
    in the data: dead (identically zero), constant or duplicated channels, or fewer
    informative rows than unknowns. Solved by a pseudo-inverse; the error E stays exact.
    (Also a ``RuntimeWarning``, the category it had before it was named.)"""


class UnmeasuredKernelWarning(GroupConvWarning):
    """An operator's kernel type has no fitted model: predicted from the roofline alone."""


class ExportWarning(GroupConvWarning):
    """Part of an export could not be written (e.g. ``torch.export`` cannot trace the model)."""


class CalibrationWarning(GroupConvWarning):
    """A calibration point failed or was skipped."""
