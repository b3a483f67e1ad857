"""The package's exception type.

Every error a user can cause with bad input is a :class:`GroupConvError` whose message is
one line and names the offending value. The CLI turns it into ``groupconv: error: ...``
on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

__all__ = ["GroupConvError", "UserModelError"]


class GroupConvError(ValueError):
    """Bad input to groupconv (a one-line message naming the bad value)."""


class UserModelError(GroupConvError):
    """The user's own model code (a factory, a module's import or its ``forward``) raised,
    or called ``sys.exit``: the message names the model and the original error, on one line."""
