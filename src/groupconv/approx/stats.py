"""Streaming sufficient statistics of a model's convs: everything the solvers need from data.

The least-squares problems of :mod:`.solvers` see the data only through, per layer,

* ``Gamma = sum_s P_s^T P_s``: the Gram matrix of the layer's input patches (``nK x nK``,
  one row of ``P_s`` per output position of sample s, one column per (channel, tap));
  the output energy ``||W x||^2`` and every cross term ``Gamma W^T`` with the dense
  output, BGC's group sums (slices and prefix sums of ``Gamma``) and the fitted weights
  all follow from it;
* the number of samples S and of output positions per sample (the rows), and
  ``sum_s ||x_s||^2`` (Eq. 5.3's data term).

:class:`PatchStats` accumulates these batch by batch in float64, so memory is the Gram
matrices (``(nK)^2`` floats per layer) plus one batch, whatever the number of samples. For
*sequential* conversion (:func:`groupconv.approx.network.convert_model` with
``sequential=True``) it also keeps the cross Gram ``sum_s P'_s^T P_s`` between the
patches ``P'`` the already-converted network feeds the layer and the patches ``P`` of the
original network, and ``Gamma`` of the latter (the target's energy).

:func:`collect_stats` runs a model over any data source of :mod:`.sources` with forward
pre-hooks on the chosen convs, shows a tqdm bar over the batches (on a terminal, unless
``progress=False``) and, when a torch.distributed process group is active, sums the
statistics over the ranks (:mod:`.distributed`) so that every rank holds the statistics
of all the data. The result is one :class:`~groupconv.approx.data.DataGram` per layer,
equal (up to the order of floating-point sums) to the in-memory
:func:`~groupconv.approx.torch_layers.layer_gram` of all the layer's inputs at once.

The patch Gram of a batch is formed on chunks of at most ``chunk_elements`` unfolded
values: ``torch.nn.functional.unfold`` of the padded chunk (for a 1 x 1 kernel with
stride 1 a transposed view instead), then one ``addmm`` into the float64 accumulator.
torch is imported inside the functions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from contextlib import contextmanager

from .. import _progress
from ..errors import GroupConvError
from . import distributed
from .data import DataGram
from .sources import describe_batch, iter_batches
from .torch_layers import _pads

__all__ = ["PatchStats", "collect_stats", "collect_sequential_stats", "run_batches", "model_signature", "DEFAULT_CHUNK_ELEMENTS"]

#: Unfolded values per chunk (float64: 32 MiB) while forming a patch Gram.
DEFAULT_CHUNK_ELEMENTS = 1 << 22
#: Convs with at least this many input channels (and a kernel larger than 1 x 1) form
#: their Gram by tap blocks (only the upper block triangle: ~(K + 1) / (2 K) of the
#: products); below it the per-tap products are too thin to run at GEMM speed.
TAP_BLOCK_MIN_CHANNELS = 128


def _batch_scale(x) -> float:
    """1.0, or the power of 4 by which the layer_gram rescales data far from unit scale (exact)."""
    top = float(x.abs().max()) if x.numel() else 0.0
    if top == 0.0 or 2.0**-100 <= top <= 2.0**100:
        return 1.0
    return 4.0 ** min(max(round(math.log2(top)), -500), 500)


class PatchStats:
    """Sufficient statistics of one conv's input patches, accumulated batch by batch.

    Parameters
    ----------
    conv : torch.nn.Conv1d or torch.nn.Conv2d
        The layer (its padding, padding_mode, stride and dilation shape the patches).
    name : str
        The layer's name, for messages.
    cross : bool
        Also keep the cross Gram with a second (reference) input, for sequential
        conversion (no rescaling then: the data must lie within 2^-100..2^100).
    chunk_elements : int
        Unfolded values per chunk.
    """

    def __init__(self, conv, name: str, cross: bool = False, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> None:
        import torch

        self.conv, self.name, self.cross = conv, name, cross
        self.dims = len(conv.kernel_size)
        self.kernel = tuple(int(k) for k in conv.kernel_size)
        self.cols = conv.in_channels * math.prod(self.kernel)
        self.chunk_elements = int(chunk_elements)
        self.gram = torch.zeros(self.cols, self.cols, dtype=torch.float64)
        self.cross_gram = torch.zeros_like(self.gram) if cross else None
        self.ref_gram = torch.zeros_like(self.gram) if cross else None
        self.sq_norm = 0.0
        self.ref_sq_norm = 0.0
        self.samples = 0
        self.positions: int | None = None
        self.spatial: tuple | None = None
        self.scale = 1.0
        pads = _pads(conv)
        self._flat_pads = [p for pair in reversed(pads) for p in pair]
        self._mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        self._pointwise = (all(k == 1 for k in self.kernel) and all(s == 1 for s in conv.stride)
                           and not any(self._flat_pads))
        #: Tap blocks: ``gram`` holds the upper block triangle of the tap-major Gram
        #: ``X_a^T X_b`` (a <= b, one GEMM per tap a against taps a..K-1): 45 of the 81
        #: products of a 3 x 3 kernel; assembled into the channel-major Gram at the end.
        self._tap_major = (self.dims == 2 and math.prod(self.kernel) > 1 and not cross
                           and conv.in_channels >= TAP_BLOCK_MIN_CHANNELS)
        self.flops = 0.0

    # -- patches ---------------------------------------------------------------------------
    def _check(self, x, what: str):
        import torch

        if x.ndim != self.dims + 2 or x.shape[1] != self.conv.in_channels:
            raise GroupConvError(
                f"data do not fit the model: layer {self.name!r} got input {tuple(x.shape)}; it needs (samples, {self.conv.in_channels}, "
                f"*{self.dims} spatial dims)"
            )
        if self.spatial is None:
            self.spatial = tuple(x.shape[2:])
        elif tuple(x.shape[2:]) != self.spatial:
            raise GroupConvError(
                f"layer {self.name!r} got spatial size {tuple(x.shape[2:])} in one batch and {self.spatial} in "
                f"another: every batch needs the same input size"
            )
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise GroupConvError(f"layer {self.name!r}: {what} contain {bad} non-finite values (NaN or inf)")

    def _rows(self, chunk):
        """The patch matrix ``(rows, n K)`` of a float64 chunk ``(s, n, *spatial)``."""
        import torch.nn.functional as F

        if self._pointwise:
            p = chunk.reshape(chunk.shape[0], chunk.shape[1], -1).transpose(1, 2)
            return p.reshape(-1, self.cols), p.shape[1]
        if any(self._flat_pads):
            chunk = F.pad(chunk, self._flat_pads, mode=self._mode)
        conv = self.conv
        if self.dims == 1:
            chunk = chunk.unsqueeze(2)
            size, stride, dil = (1, *self.kernel), (1, *conv.stride), (1, *conv.dilation)
        else:
            size, stride, dil = self.kernel, tuple(conv.stride), tuple(conv.dilation)
        patches = F.unfold(chunk, size, dilation=dil, stride=stride)  # (s, nK, L)
        return patches.transpose(1, 2).reshape(-1, self.cols), patches.shape[2]

    def _per_chunk(self, x) -> int:
        return max(1, self.chunk_elements // max(1, self.cols * math.prod(x.shape[2:])))

    def add(self, x, ref=None) -> None:
        """Add one batch of the layer's inputs ``x`` (and, with ``cross``, the reference inputs ``ref``)."""
        import torch

        x = x.detach().to("cpu", torch.float64)
        self._check(x, "its inputs")
        if self.cross:
            if ref is None:
                raise GroupConvError(f"layer {self.name!r}: sequential statistics need the reference inputs")
            ref = ref.detach().to("cpu", torch.float64)
            if ref.shape != x.shape:
                raise GroupConvError(f"layer {self.name!r}: reference inputs {tuple(ref.shape)} differ from {tuple(x.shape)}")
            if not bool(torch.isfinite(ref).all()):
                raise GroupConvError(f"layer {self.name!r}: the original network's inputs contain non-finite values")
        else:
            s = _batch_scale(x)
            if self.samples == 0:
                self.scale = s
            elif s > self.scale:  # a louder batch: bring what we have to its scale (powers of 4: exact)
                self.gram *= self.scale / s
                self.sq_norm *= self.scale / s
                self.scale = s
            if self.scale != 1.0:
                x = x / math.sqrt(self.scale)
        self.sq_norm += float((x * x).sum())
        if self.cross:
            self.ref_sq_norm += float((ref * ref).sum())
        per_chunk = self._per_chunk(x)
        if self._tap_major:
            for start in range(0, x.shape[0], per_chunk):
                self._add_tap_blocks(x[start : start + per_chunk])
            self.samples += int(x.shape[0])
            return
        for start in range(0, x.shape[0], per_chunk):
            p, positions = self._rows(x[start : start + per_chunk])
            if self.positions is None:
                self.positions = int(positions)
            self.gram.addmm_(p.T, p)
            self.flops += 2.0 * p.shape[0] * self.cols**2
            if self.cross:
                q, _ = self._rows(ref[start : start + per_chunk])
                self.cross_gram.addmm_(p.T, q)
                self.ref_gram.addmm_(q.T, q)
                self.flops += 4.0 * p.shape[0] * self.cols**2
        self.samples += int(x.shape[0])

    def _add_tap_blocks(self, chunk) -> None:
        """Add ``X_a^T [X_a .. X_{K-1}]`` for each tap a: the tap-major upper block triangle."""
        import torch
        import torch.nn.functional as F

        conv = self.conv
        if any(self._flat_pads):
            chunk = F.pad(chunk, self._flat_pads, mode=self._mode)
        xp = chunk.permute(0, 2, 3, 1)  # (s, H, W, n)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, conv.stride, conv.dilation
        ho = (xp.shape[1] - dh * (kh - 1) - 1) // sh + 1
        wo = (xp.shape[2] - dw * (kw - 1) - 1) // sw + 1
        n, taps = conv.in_channels, kh * kw
        blocks = torch.empty(xp.shape[0], ho, wo, taps, n, dtype=torch.float64)
        for i in range(kh):
            for j in range(kw):
                blocks[:, :, :, i * kw + j] = xp[:, i * dh : i * dh + sh * (ho - 1) + 1 : sh,
                                                 j * dw : j * dw + sw * (wo - 1) + 1 : sw]
        rows = xp.shape[0] * ho * wo
        blocks = blocks.reshape(rows, taps, n)
        for a in range(taps):
            self.gram[a * n : (a + 1) * n, a * n :].addmm_(blocks[:, a].T, blocks[:, a:].reshape(rows, -1))
            self.flops += 2.0 * rows * n * (taps - a) * n
        if self.positions is None:
            self.positions = int(ho * wo)

    def _assemble(self) -> None:
        """Turn the tap-major upper block triangle into the full channel-major Gram (once)."""
        import torch

        if not self._tap_major:
            return
        n, taps = self.conv.in_channels, math.prod(self.kernel)
        upper = torch.triu(torch.ones(taps, taps, dtype=torch.bool))
        a4 = self.gram.reshape(taps, n, taps, n)
        full = torch.where(upper[:, None, :, None], a4, a4.permute(2, 3, 0, 1))
        self.gram = full.permute(1, 0, 3, 2).reshape(self.cols, self.cols).contiguous()
        self._tap_major = False

    # -- results ---------------------------------------------------------------------------
    def data_gram(self) -> DataGram:
        """The accumulated statistics as the solvers take them."""
        if self.samples == 0:
            raise GroupConvError(f"layer {self.name!r} was not called by the model's forward pass")
        self._assemble()
        return DataGram(
            gram=self.gram.numpy(),
            in_channels=self.conv.in_channels,
            kernel=self.kernel,
            samples=self.samples,
            positions=int(self.positions),
            mean_sq_norm=self.sq_norm / self.samples,
            scale=self.scale,
        )

    def reduce(self, timeout_s: float | None = None) -> None:
        """Sum the statistics over the ranks of the active process group (in place)."""
        import torch

        if not self.cross:
            exponent = torch.tensor([math.log2(self.scale) if self.samples else -1e9], dtype=torch.float64)
            distributed.all_reduce_max(exponent, timeout_s=timeout_s)
            common = 2.0 ** float(exponent[0])
            if self.samples and common != self.scale:
                self.gram *= self.scale / common
                self.sq_norm *= self.scale / common
            self.scale = common if exponent[0] > -1e8 else 1.0
        counts = torch.tensor([float(self.samples), self.sq_norm, self.ref_sq_norm], dtype=torch.float64)
        distributed.all_reduce_sum(counts, timeout_s=timeout_s)
        self.samples, self.sq_norm, self.ref_sq_norm = int(counts[0]), float(counts[1]), float(counts[2])
        for t in (self.gram, self.cross_gram, self.ref_gram):
            if t is not None:
                distributed.all_reduce_sum(t, timeout_s=timeout_s)


def model_signature(model, names: Iterable[str]) -> str:
    """A short text every rank must share: the chosen layers and a hash of the model's state."""
    import torch

    digest = hashlib.sha1()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        if torch.is_tensor(value):
            t = value.detach().to("cpu")
            digest.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
            if t.numel():
                digest.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                              if t.dtype != torch.bool else t.numpy().tobytes())
    names = list(names)
    return f"model {type(model).__name__} with {len(names)} layers measured, state {digest.hexdigest()[:12]}"


def _bar(progress, data):
    """A tqdm bar over the batches: on a terminal only (tqdm's ``disable=None``), never with
    ``progress=False`` or where progress is off everywhere (``-q``, :mod:`groupconv._progress`)."""
    if progress is False or not _progress.enabled():
        return None
    from tqdm import tqdm  # the plain bar: tqdm.auto warns in a notebook without ipywidgets

    total = len(data) if hasattr(data, "__len__") and not hasattr(data, "shape") else None
    return tqdm(total=total, desc="statistics", unit="batch", leave=False, disable=None)


def run_batches(model, data, step, *, input_index=None, batch_size: int = 256, progress=None) -> dict:
    """Run ``model`` (eval, no grad) on every batch of ``data`` and call ``step(inputs, out)``.

    Returns ``{"samples": S, "shape": description of the first batch}``. A batch the
    model cannot take is one line naming its shape (with a hint for labelled batches).
    """
    import torch

    bar = _bar(progress, data)
    was_training = model.training
    samples, shape, sample = 0, None, None
    try:
        model.eval()
        with torch.no_grad():
            for inputs in iter_batches(data, input_index=input_index, batch_size=batch_size):
                if shape is None:
                    shape = describe_batch(inputs)
                    sample = " + ".join(f"(*, {', '.join(map(str, x.shape[1:]))}) {str(x.dtype).replace('torch.', '')}"
                                        for x in inputs)
                    for x in inputs:
                        if not (x.is_floating_point()):
                            raise GroupConvError(
                                f"data of shape {shape}: the model inputs must be floating point"
                                + ("" if input_index is not None else
                                   " (a labelled batch? say which part is the input with input_index=0)")
                            )
                try:
                    out = model(*inputs)
                except GroupConvError:
                    raise
                except (RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
                    first = str(exc).strip().split("\n")[0]
                    hint = "" if input_index is not None or len(inputs) == 1 else \
                        " (a labelled batch? say which part is the input with input_index=0)"
                    shapes = " + ".join(str(tuple(x.shape)) for x in inputs)
                    raise GroupConvError(f"data of shape {shapes} do not fit the model: {first}{hint}") from None
                step(inputs, out)
                samples += int(inputs[0].shape[0])
                if bar is not None:
                    bar.update(1)
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    return {"samples": samples, "shape": shape, "sample": sample}


@contextmanager
def _ranks_agree(model, names: Iterable[str], *, timeout_s: float | None):
    """Run the block (a pass over this rank's data), then make every rank agree.

    Yields a dict that the block fills with :func:`run_batches`' result. In one process a
    :class:`GroupConvError` of the block propagates as it is. Under torch.distributed it
    is caught, and on leaving the block every rank exchanges its error or its signature
    (the data's sample shape and the model's layers, :func:`model_signature`) with
    :func:`~groupconv.approx.distributed.agree`, which raises the same one line on every
    rank if any failed or they disagree - so that no rank is left waiting in a later
    collective for one that gave up. Other exceptions propagate without the exchange.
    """
    multi = distributed.active()
    info: dict = {"samples": 0, "shape": None}
    error = None
    try:
        yield info
    except GroupConvError as exc:
        if not multi:
            raise
        error = str(exc)
    if multi:
        distributed.agree(error, f"inputs {info.get('sample') or 'none'}; {model_signature(model, names)}",
                          timeout_s=timeout_s)


def collect_stats(model, data, convs: dict, *, input_index=None, batch_size: int = 256, progress=None,
                  chunk_elements: int = DEFAULT_CHUNK_ELEMENTS, timeout_s: float | None = None) -> dict:
    """Per-layer :class:`~groupconv.approx.data.DataGram` of ``convs`` on ``data``, streamed.

    Parameters
    ----------
    model : torch.nn.Module
    data : tensor, tuple of tensors, iterable of batches, DataLoader or ShardDirectory
        See :func:`groupconv.approx.sources.iter_batches`. Under torch.distributed, each
        rank passes its own shard.
    convs : dict
        ``{name: conv}`` of the layers to gather (e.g. from ``eligible_convs``).
    input_index : int, sequence of int or callable, optional
        Which part of a batch is the model input (labelled data).
    batch_size : int
        Samples per forward pass when ``data`` is one tensor.
    progress : bool, optional
        tqdm bar over the batches (default: when stderr is a terminal).
    timeout_s : float, optional
        Limit of each collective under torch.distributed.

    Returns
    -------
    dict
        ``{name: DataGram}`` (statistics of all ranks' data) and, under the key ``None``,
        ``{"samples": S, "flops": F, "shape": str}`` (S and F summed over the ranks).
    """
    stats = {name: PatchStats(conv, name, chunk_elements=chunk_elements) for name, conv in convs.items()}
    multi = distributed.active()
    handles = []
    for name, conv in convs.items():
        def hook(module, args, name=name):
            stats[name].add(args[0])
        handles.append(conv.register_forward_pre_hook(hook))
    with _ranks_agree(model, convs, timeout_s=timeout_s) as info:
        try:
            info.update(run_batches(model, data, lambda inputs, out: None, input_index=input_index,
                                    batch_size=batch_size, progress=progress))
            missing = [n for n, s in stats.items() if s.samples == 0]
            if missing:
                raise GroupConvError(f"layer {missing[0]!r} was not called by the model's forward pass")
        finally:
            for h in handles:
                h.remove()
    flops = sum(s.flops for s in stats.values())
    if multi:
        for s in stats.values():
            s.reduce(timeout_s=timeout_s)
        import torch

        totals = torch.tensor([flops], dtype=torch.float64)
        distributed.all_reduce_sum(totals, timeout_s=timeout_s)
        flops = float(totals[0])
    out: dict = {name: s.data_gram() for name, s in stats.items()}
    out[None] = {"samples": next(iter(stats.values())).samples if stats else info["samples"],
                 "flops": flops, "shape": info["shape"]}
    return out


class _Stop(Exception):
    """Raised by a hook once a layer's input is captured: the rest of the forward is not needed."""


def collect_sequential_stats(model, converted, name: str, data, *, input_index=None, batch_size: int = 256,
                             progress=None, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
                             timeout_s: float | None = None) -> PatchStats:
    """Statistics to fit layer ``name`` of ``converted`` against the same layer of ``model``.

    Per batch, the input that the partly converted network ``converted`` feeds the layer
    (the regressors) and the input of the original ``model``'s layer (whose dense output
    is the target) are captured (each forward stops at the layer), and their patch Grams
    and cross Gram accumulated. Summed over the ranks under torch.distributed.
    """
    import torch

    conv = model.get_submodule(name)
    stats = PatchStats(conv, name, cross=True, chunk_elements=chunk_elements)
    slot: dict = {}

    def keep(module, args):
        slot["ref"] = args[0]
        raise _Stop

    def add(module, args):
        stats.add(args[0], slot.pop("ref"))
        raise _Stop

    class _Pair(torch.nn.Module):
        def forward(self, *inputs):
            for net in (model, converted):
                try:
                    net(*inputs)
                except _Stop:
                    pass
            return None

    pair = _Pair()
    handles = [conv.register_forward_pre_hook(keep),
               converted.get_submodule(name).register_forward_pre_hook(add)]
    flags = (model.training, converted.training)
    with _ranks_agree(model, [name], timeout_s=timeout_s) as info:
        try:
            model.eval()
            converted.eval()
            info.update(run_batches(pair, data, lambda inputs, out: None, input_index=input_index,
                                    batch_size=batch_size, progress=progress))
            if stats.samples == 0:
                raise GroupConvError(f"layer {name!r} was not called by the model's forward pass")
        finally:
            for h in handles:
                h.remove()
            model.train(flags[0])
            converted.train(flags[1])
    if distributed.active():
        stats.reduce(timeout_s=timeout_s)
    return stats
