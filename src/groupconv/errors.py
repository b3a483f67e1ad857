"""The package's exception type.

Every error a user can cause with bad input is a :class:`GroupConvError` whose message is
one line and names the offending value. The CLI turns it into ``groupconv: error: ...``
on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

__all__ = ["GroupConvError"]


class GroupConvError(ValueError):
    """Bad input to groupconv (a one-line message naming the bad value)."""
