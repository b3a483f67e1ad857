"""How well would GC or BGC with N groups replace a real torch Conv1d / Conv2d layer?

:func:`approximability_of_conv` takes a layer of the user's network and, optionally, the
feature maps that actually reach it, and reports for every (method, N) the error of the
best GC/BGC replacement (the same measure as BGC paper Eq. 5.1/5.3 with the layer's own
weight as the single weight sample), the fraction of the layer's output energy that
replacement loses, and, on request, the replacement's weights (the paper's §5.2.1
"transfer the parameters of the pre-trained standard convolution").

The patches follow the layer exactly: its padding (numbers, ``"same"``, ``"valid"``),
``padding_mode``, stride and dilation, via :func:`torch.nn.functional.unfold`. A grouped
layer is first expanded to its dense (block-diagonal) equivalent. The bias is left out:
any replacement can keep it unchanged.

torch is imported inside the functions; importing this module does not import it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as v
from ..errors import GroupConvError
from . import theory
from .data import DataGram, DISTRIBUTIONS, as_real_array, sample_data
from .measure import ApproxResult, _ratio, _structures
from .solvers import GramSolver
from .structures import METHODS, Structure

__all__ = [
    "LayerApprox",
    "approximability_of_conv",
    "dense_weight",
    "layer_gram",
    "grouped_weights",
    "output_positions",
]


def _check_conv(conv):
    import torch

    if not isinstance(conv, (torch.nn.Conv1d, torch.nn.Conv2d)):
        raise GroupConvError(
            f"need a torch.nn.Conv1d or Conv2d layer, got {type(conv).__name__}"
        )
    return conv


def dense_weight(conv) -> np.ndarray:
    """The layer's weight as a dense ``(m, n, *kernel)`` float64 array (groups expanded)."""
    conv = _check_conv(conv)
    w = conv.weight.detach().to("cpu").double().numpy()
    g = conv.groups
    if g == 1:
        return w.copy()
    m, n_g = w.shape[:2]
    dense = np.zeros((m, n_g * g, *w.shape[2:]))
    m_g = m // g
    for k in range(g):
        dense[k * m_g : (k + 1) * m_g, k * n_g : (k + 1) * n_g] = w[k * m_g : (k + 1) * m_g]
    return dense


def _pads(conv) -> list[tuple[int, int]]:
    """``(left, right)`` padding per spatial axis, as the layer applies it."""
    kernel, dilation = conv.kernel_size, conv.dilation
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return [(0, 0) for _ in kernel]
        pads = []
        for k, d in zip(kernel, dilation):  # "same": torch puts the extra zero on the right
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        return pads
    return [(p, p) for p in conv.padding]


def layer_gram(conv, data, chunk_elements: int = 1 << 22, progress: bool = False) -> DataGram:
    """Patch Gram matrix of ``data`` as the layer sees it (its padding, stride, dilation).

    ``data``: ``(S, n, L)`` for a Conv1d or ``(S, n, H, W)`` for a Conv2d, a tensor or an
    array; validated (shape, channels, finite, not all zero).
    """
    import torch
    import torch.nn.functional as F

    conv = _check_conv(conv)
    dims = len(conv.kernel_size)
    if not torch.is_tensor(data):
        data = torch.from_numpy(as_real_array("data", data))
    elif data.is_complex():
        as_real_array("data", data)  # the one-line error for complex data
    x = data.detach().to("cpu", torch.float64)
    if x.ndim != dims + 2:
        raise GroupConvError(
            f"data for a Conv{dims}d must have shape (samples, channels, *{dims} spatial dims), "
            f"got {tuple(x.shape)}"
        )
    if x.shape[1] != conv.in_channels:
        raise GroupConvError(
            f"data have {x.shape[1]} channels but the layer has in_channels={conv.in_channels}"
        )
    if x.numel() == 0:
        raise GroupConvError(f"data are empty, shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise GroupConvError(f"data contain {bad} non-finite values (NaN or inf)")
    if not bool(x.any()):
        raise GroupConvError("data are all zero; the approximation error would be a meaningless 0")
    top = float(x.abs().max())
    scale = 1.0 if 2.0**-100 <= top <= 2.0**100 else 4.0 ** min(max(round(math.log2(top)), -500), 500)
    if scale != 1.0:
        x = x / math.sqrt(scale)
    pads = _pads(conv)
    flat_pads = [p for pair in reversed(pads) for p in pair]  # F.pad wants the last axis first
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    kernel = tuple(conv.kernel_size)
    # Conv1d goes through unfold as a 1 x L image.
    size2 = (1, *kernel) if dims == 1 else kernel
    stride2 = (1, *conv.stride) if dims == 1 else tuple(conv.stride)
    dil2 = (1, *conv.dilation) if dims == 1 else tuple(conv.dilation)
    cols = conv.in_channels * math.prod(kernel)
    samples = x.shape[0]
    per_chunk = max(1, chunk_elements // max(1, cols * math.prod(x.shape[2:])))
    gram = torch.zeros(cols, cols, dtype=torch.float64)
    positions = None
    starts = range(0, samples, per_chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="gram", unit="chunk", leave=False)
    for start in starts:
        chunk = x[start : start + per_chunk]
        if any(flat_pads):
            chunk = F.pad(chunk, flat_pads, mode=mode)
        if dims == 1:
            chunk = chunk.unsqueeze(2)
        patches = F.unfold(chunk, size2, dilation=dil2, stride=stride2)  # (s, nK, L)
        positions = patches.shape[2]
        p = patches.transpose(1, 2).reshape(-1, cols)
        gram += p.T @ p
    return DataGram(
        gram=gram.numpy(),
        in_channels=conv.in_channels,
        kernel=kernel,
        samples=samples,
        positions=int(positions),
        mean_sq_norm=float((x * x).sum() / samples),
        scale=scale,
    )


def grouped_weights(dense: np.ndarray, method: str, groups: int):
    """Split a best replacement's dense-equivalent weight into the structure's own weights.

    GC: the ``(m, n/N, *kernel)`` weight of ``torch.nn.Conv*d(n, m, k, groups=N)``.
    BGC (Eq. 3.1): ``(W_gc, W_bar)``; ``W_gc`` as for GC, and ``W_bar`` the
    ``(m, n/N, *kernel)`` weight of a dense conv applied to the group mean
    ``x_bar = (1/N) sum_l x^l`` (rows of output group k are ``W_bar^k``).
    """
    v.one_of("method", method, METHODS)
    w = np.asarray(dense, dtype=np.float64)
    m, n = w.shape[:2]
    v.divides("groups", groups, "in_channels", n)
    v.divides("groups", groups, "out_channels", m)
    m_g, n_g = m // groups, n // groups
    gc = np.stack(
        [w[k * m_g : (k + 1) * m_g, k * n_g : (k + 1) * n_g] for k in range(groups)]
    ).reshape(m, n_g, *w.shape[2:])
    if method == "gc":
        return gc
    if groups == 1:
        return gc, np.zeros_like(gc)
    # Off-diagonal blocks of row k all equal W_bar^k / N; the diagonal one adds W^kk.
    bar = np.stack(
        [
            groups * w[k * m_g : (k + 1) * m_g, ((k + 1) % groups) * n_g : ((k + 1) % groups + 1) * n_g]
            for k in range(groups)
        ]
    ).reshape(m, n_g, *w.shape[2:])
    return gc - bar / groups, bar


@dataclass(frozen=True)
class LayerApprox:
    """Approximability of one real layer by each (method, N).

    Attributes
    ----------
    layer : str
        ``repr`` of the layer.
    in_channels, out_channels : int
    kernel : tuple of int
    samples, positions : int
        Data samples and output positions per sample (rows = samples x positions).
    data_source : str
        ``"user"`` or the random distribution used.
    results : tuple of ApproxResult
        One per (method, N): ``E`` (mean over the samples of the squared output error of
        the best replacement), ``rel_E`` (Eq. 5.3 with this layer's ``||W||^2``),
        ``rel_output_E`` (fraction of the layer's output energy lost), the bounds.
    weights : dict
        ``(method, N) -> dense-equivalent best weight (m, n, *kernel)`` when asked for;
        see :func:`grouped_weights` to split it.
    """

    layer: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    samples: int
    positions: int
    data_source: str
    results: tuple[ApproxResult, ...]
    weights: dict = field(default_factory=dict, compare=False, repr=False)

    def records(self) -> list[dict]:
        """One dict per (method, N)."""
        return [r.as_dict() for r in self.results]

    def to_frame(self):
        """A pandas DataFrame of :meth:`records`."""
        import pandas as pd

        return pd.DataFrame(self.records())

    def table(self) -> str:
        """A readable table: method, N, fraction of output energy lost, Rel.E, bound."""
        lines = [f"{self.layer}: {self.samples} {self.data_source} samples x {self.positions} positions",
                 f"{'method':<14}{'N':>4}{'lost output':>13}{'rel_E':>12}{'bound_iid':>12}"]
        for r in self.results:
            bound = "-" if r.bound_iid is None else f"{r.bound_iid:.4e}"
            lines.append(f"{r.method:<14}{r.groups:>4}{r.rel_output_E:>13.2%}{r.rel_E:>12.4e}{bound:>12}")
        return "\n".join(lines)


def output_positions(conv, shape: Sequence[int]) -> int:
    """Output positions of the layer for an input of spatial size ``shape``."""
    count = 1
    for size, k, s, d, (left, right) in zip(
        shape, conv.kernel_size, conv.stride, conv.dilation, _pads(conv)
    ):
        span = d * (k - 1) + 1
        if size + left + right < span:
            raise GroupConvError(f"input size {tuple(shape)} is too small for {conv!r}")
        count *= (size + left + right - span) // s + 1
    return count


def _default_input_size(conv) -> tuple[int, ...]:
    return (32,) if len(conv.kernel_size) == 1 else (16, 16)


def approximability_of_conv(
    conv,
    groups: int | Iterable[int],
    methods: Sequence[str] = ("gc", "bgc"),
    data=None,
    *,
    structures: Sequence[Structure] = (),
    input_size: int | Sequence[int] | None = None,
    data_samples: int | None = None,
    dist: str = "normal",
    seed: int = 0,
    return_weights: bool = False,
    progress: bool = False,
) -> LayerApprox:
    """How well GC/BGC with N groups would replace ``conv`` (BGC paper Eq. 5.1 / 5.3).

    Parameters
    ----------
    conv : torch.nn.Conv1d or torch.nn.Conv2d
        The layer (any padding, padding_mode, stride, dilation, groups; bias ignored).
    groups : int or iterable of int
        The N values; each must divide the layer's in and out channels.
    methods : sequence of {"gc", "bgc"}
    data : tensor or array, optional
        Feature maps that reach the layer, ``(S, n, L)`` or ``(S, n, H, W)`` - the
        honest choice for a trained network. Default: random ``dist`` data.
    structures : sequence of Structure
        Extra structures (e.g. a permuted or learned partition).
    input_size : int or tuple, optional
        Spatial size of the random data (default 32, or 16 x 16 for a Conv2d).
    data_samples : int, optional
        Number of random samples; default: enough for 8 data rows per unknown of the
        largest least-squares problem (so the in-sample bias is at most ~1/8).
    dist : {"normal", "uniform"}
        Distribution of the random data.
    seed : int
    return_weights : bool
        Also return each best replacement's dense-equivalent weight.
    progress : bool
        tqdm bars on stderr.
    """
    conv = _check_conv(conv)
    n, m = conv.in_channels, conv.out_channels
    group_list = [groups] if isinstance(groups, (int, np.integer)) else list(groups)
    chosen = _structures(methods, group_list, structures)
    layouts = [s.layout(n, m) for s in chosen]
    kernel = tuple(conv.kernel_size)
    taps = math.prod(kernel)

    if data is None:
        v.one_of("dist", dist, DISTRIBUTIONS)
        shape = _default_input_size(conv) if input_size is None else input_size
        shape = (shape,) * len(kernel) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if data_samples is None:
            unknowns = max(l.group_rank(k) for l in layouts for k in range(len(l.uses))) * taps
            data_samples = max(8, math.ceil(8 * unknowns / output_positions(conv, shape)))
        rng = np.random.default_rng(v.nonnegative_int("seed", seed))
        data = sample_data(dist, v.positive_int("data samples", data_samples), n, shape, rng)
        source = dist
    else:
        source = "user"
    gram = layer_gram(conv, data, progress=progress)
    weight = dense_weight(conv)
    solver = GramSolver(gram, weight[None])
    norm_w = float(np.sum(weight**2))
    steps = layouts
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(layouts, desc="approx", unit="structure")
    results, weights = [], {}
    for layout in steps:
        fit = solver.solve(layout, return_weights=return_weights)
        E = float(fit.errors[0])
        b_thm, b_iid = theory.bounds_for(layout.name, layout.groups, taps, n)
        results.append(
            ApproxResult(
                method=layout.name,
                groups=layout.groups,
                E=E,
                E_stderr=0.0,
                rel_E=_ratio(E, norm_w * gram.mean_sq_norm * gram.scale),
                rel_output_E=_ratio(E, float(fit.totals[0])),
                errors=(E,),
                unknowns=fit.unknowns,
                rows=gram.rows,
                bound_thm=b_thm,
                bound_iid=b_iid,
                rel_E_population=theory.rel_E_population_layout(layout),
            )
        )
        if return_weights:
            weights[(layout.name, layout.groups)] = fit.weights[0]
    return LayerApprox(
        layer=repr(conv),
        in_channels=n,
        out_channels=m,
        kernel=kernel,
        samples=gram.samples,
        positions=gram.positions,
        data_source=source,
        results=tuple(results),
        weights=weights,
    )
