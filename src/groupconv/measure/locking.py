"""An advisory lock on a runs file while a process writes it.

Two processes appending to one runs CSV duplicate rows, glue two rows into one line or
cut a line. :class:`WriterLock` holds a :class:`filelock.FileLock` on ``<file>.lock``
(an OS lock: released when the process ends, even on SIGKILL) for as long as a
:class:`~groupconv.measure.RunWriter` is open, and writes who holds it (pid, host,
command) into the lock file, so that a second writer is refused in one line naming the
file and the holder. Readers (``fit``, ``read_runs``) do not take the lock.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

from ..errors import GroupConvError

__all__ = ["WriterLock", "lock_path_for"]


def lock_path_for(path: str | os.PathLike[str]) -> Path:
    """The lock file of a runs file: ``runs.csv`` -> ``runs.csv.lock``."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def _holder_text() -> str:
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    if len(command) > 120:
        command = command[:117] + "..."
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"pid {os.getpid()} on {socket.gethostname()} since {stamp} ({command})"


class WriterLock:
    """Hold the advisory lock of one runs file (see the module docstring).

    Parameters
    ----------
    path : path
        The runs file (the lock is ``<path>.lock``).
    what : str
        What the file is, for the message ("runs file", "calibration runs file").

    Raises
    ------
    GroupConvError
        On :meth:`acquire`, when another process holds the lock.
    """

    def __init__(self, path: str | os.PathLike[str], what: str = "runs file") -> None:
        from filelock import FileLock

        self.path = Path(path)
        self.lock_path = lock_path_for(self.path)
        self.what = what
        self._lock = FileLock(str(self.lock_path), timeout=0)

    def acquire(self) -> WriterLock:
        from filelock import Timeout

        if self.lock_path.parent and not self.lock_path.parent.exists():
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        holder = self._read_holder()
        try:
            self._lock.acquire()
        except Timeout:
            holder = self._read_holder() or holder or "another process"
            raise GroupConvError(
                f"{self.what} {self.path} is being written by another process ({holder}); "
                f"wait for it to finish or write to another file (lock: {self.lock_path.name})"
            ) from None
        try:
            with open(self.lock_path, "w", encoding="utf-8") as handle:
                handle.write(_holder_text() + "\n")
        except OSError:
            pass  # the lock holds without its note
        return self

    def _read_holder(self) -> str:
        try:
            return self.lock_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[0]
        except (OSError, IndexError):
            return ""

    def release(self) -> None:
        if self._lock.is_locked:
            try:
                with open(self.lock_path, "w", encoding="utf-8"):
                    pass  # no holder any more
            except OSError:
                pass
            self._lock.release()

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
