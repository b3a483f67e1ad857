"""The statistics of many processes as one: torch.distributed all-reduce with a timeout.

When a default process group is initialised (``torch.distributed.init_process_group``;
gloo on CPU, NCCL on GPU) and has more than one rank, :func:`groupconv.approx.stats.collect_stats`
lets every rank stream its own shard of the data and then sums the per-layer sufficient
statistics over the ranks here, so that every rank solves the same least-squares problems
and returns the same table and the same converted weights.

Before any sum, :func:`agree` all-gathers a short fixed-size message from every rank: an
error line (a rank whose data did not fit, whose loader was empty...) or a signature of
its model and data. Any error, or any two signatures that differ, becomes the same one-line
:class:`~groupconv.errors.GroupConvError` on every rank, naming the rank; so a mismatch
fails everywhere instead of hanging in a collective that the others never join. Every
collective waits at most ``timeout_s`` (default 300 s, or ``GROUPCONV_DIST_TIMEOUT_S``).
torch is imported inside the functions.
"""

from __future__ import annotations

import datetime
import os

from ..errors import GroupConvError

__all__ = ["active", "rank", "world_size", "agree", "all_reduce_sum", "all_reduce_max", "DEFAULT_TIMEOUT_S"]

#: Seconds any collective may wait for the other ranks.
DEFAULT_TIMEOUT_S = 300.0
_MESSAGE_BYTES = 1024


def _dist():
    import torch.distributed as dist

    return dist


def active() -> bool:
    """Whether a default process group with more than one rank is initialised."""
    try:
        dist = _dist()
    except ImportError:  # pragma: no cover
        return False
    return bool(dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


def rank() -> int:
    """This process's rank (0 when no process group is active)."""
    return _dist().get_rank() if active() else 0


def world_size() -> int:
    """Number of ranks (1 when no process group is active)."""
    return _dist().get_world_size() if active() else 1


def _timeout(timeout_s: float | None) -> float:
    if timeout_s is not None:
        return float(timeout_s)
    text = os.environ.get("GROUPCONV_DIST_TIMEOUT_S")
    try:
        return float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise GroupConvError(f"GROUPCONV_DIST_TIMEOUT_S={text!r} is not a number of seconds") from None


def _device():
    import torch

    if _dist().get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _wait(work, what: str, timeout_s: float | None) -> None:
    seconds = _timeout(timeout_s)
    try:
        ok = work.wait(timeout=datetime.timedelta(seconds=seconds))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GroupConvError(
            f"rank {rank()}: {what} did not complete within {seconds:g} s (another rank failed, "
            f"stopped or has other data): {first}"
        ) from None
    if ok is False:
        raise GroupConvError(f"rank {rank()}: {what} did not complete within {seconds:g} s")


def agree(error: str | None, signature: str, *, timeout_s: float | None = None) -> None:
    """All-gather each rank's error or signature; raise the same one line on every rank.

    Parameters
    ----------
    error : str or None
        This rank's failure (one line), or None.
    signature : str
        A short description of this rank's model and data that every rank must share
        (compared as text; at most ~1000 bytes are exchanged).
    """
    import torch

    dist = _dist()
    status = 1 if error is not None else 0
    text = (error if error is not None else signature).encode("utf-8")[: _MESSAGE_BYTES - 1]
    buf = torch.zeros(_MESSAGE_BYTES, dtype=torch.uint8)
    buf[0] = status
    buf[1 : 1 + len(text)] = torch.frombuffer(bytearray(text), dtype=torch.uint8)
    buf = buf.to(_device())
    gathered = [torch.zeros_like(buf) for _ in range(dist.get_world_size())]
    _wait(dist.all_gather(gathered, buf, async_op=True), "exchanging the data signatures", timeout_s)
    messages = []
    for g in gathered:
        raw = bytes(g.cpu().tolist())
        messages.append((raw[0], raw[1:].rstrip(b"\0").decode("utf-8", "replace")))
    for r, (st, msg) in enumerate(messages):
        if st:
            raise GroupConvError(msg if msg.startswith("rank ") else f"rank {r}: {msg}")
    for r, (_, msg) in enumerate(messages[1:], start=1):
        if msg != messages[0][1]:
            raise GroupConvError(f"ranks disagree: rank 0 has {messages[0][1]}; rank {r} has {msg}")


def _all_reduce(tensor, op_name: str, what: str, timeout_s: float | None):
    """``tensor`` reduced over the ranks by ``ReduceOp.<op_name>``, in place, on the
    process group's device and back (``what`` names the step in a timeout message)."""
    dist = _dist()
    device = _device()
    work_tensor = tensor if tensor.device == device else tensor.to(device)
    _wait(dist.all_reduce(work_tensor, op=getattr(dist.ReduceOp, op_name), async_op=True), what, timeout_s)
    if work_tensor is not tensor:
        tensor.copy_(work_tensor.to(tensor.device))
    return tensor


def all_reduce_sum(tensor, *, timeout_s: float | None = None):
    """Sum ``tensor`` over the ranks, in place (float64 on the CPU comes back on the CPU)."""
    return _all_reduce(tensor, "SUM", "summing the statistics", timeout_s)


def all_reduce_max(tensor, *, timeout_s: float | None = None):
    """Maximum of ``tensor`` over the ranks, in place."""
    return _all_reduce(tensor, "MAX", "agreeing on the scale", timeout_s)
