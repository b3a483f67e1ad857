"""Structured approximations of a dense conv, declared by the input features each output group sees.

A dense conv ``W`` maps n input channels to m output channels with K taps. A structured
conv (GC, BGC, ...) restricts it: the output channels are split into groups, and the
channels of output group k may only use some *linear features* ``F_k x`` of the input
channels (``F_k`` is an ``r_k x n`` matrix), each through its own K-tap convolution:

    y^k = sum_f  V^k_f * (F_k x)_f          (one K-tap conv per feature f and output)

* **GC** (BGC paper Eq. 2.3): ``F_k`` selects the input channels of group k.
* **BGC** (Eq. 3.1): ``F_k`` stacks that selection with the intergroup mean
  ``x_bar = (1/N) sum_l x^l`` (n/N features, the same for every group).
* **Partitioned GC**: any partition of the input and output channels (a permuted
  channel order, or a learned grouping) - GC with other index sets.
* **DenseStructure**: every group sees every channel (the standard conv itself; error 0).

A :class:`Structure` turns (n, m) into a :class:`FeatureLayout`: a dictionary of features
(the rows of one ``R x n`` matrix, shared by all groups) plus, per output group, its
output channels and the rows of the dictionary it may use. The solvers only ever see
layouts, so a new variant plugs in by writing its ``layout`` method; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, runtime_checkable

import numpy as np

from .. import _validate as v
from ..errors import GroupConvError
from ..vocab import GROUPED_METHODS

__all__ = [
    "FeatureLayout",
    "Structure",
    "GCStructure",
    "BGCStructure",
    "PartitionedGCStructure",
    "DenseStructure",
    "METHODS",
    "structure",
]

#: Method names understood by :func:`structure` (and the CLI's ``--method``).
METHODS: tuple[str, ...] = GROUPED_METHODS


@dataclass(frozen=True, eq=False)
class FeatureLayout:
    """Which linear input features each output group may use (the solvers' whole view).

    Attributes
    ----------
    in_channels, out_channels : int
        n and m of the dense conv being approximated.
    features : ndarray, shape (R, n)
        The feature dictionary: row f is the linear map ``x -> features[f] @ x`` over
        channels (applied at every position).
    out_groups : tuple of int arrays
        Output channels of each group; together a partition of ``range(m)``.
    uses : tuple of int arrays
        For each group, the rows of ``features`` its outputs may use.
    name : str
        Label of the structure (``"gc"``, ``"bgc"``, ...).
    groups : int
        The structure's N (for labels; ``len(out_groups)`` for generic partitions).
    """

    in_channels: int
    out_channels: int
    features: np.ndarray
    out_groups: tuple[np.ndarray, ...]
    uses: tuple[np.ndarray, ...]
    name: str
    groups: int

    def __post_init__(self) -> None:
        features = np.asarray(self.features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.in_channels:
            raise GroupConvError(
                f"features must have shape (R, {self.in_channels}), got {features.shape}"
            )
        if not np.all(np.isfinite(features)):
            raise GroupConvError("features contain non-finite values")
        if len(self.out_groups) != len(self.uses) or not self.out_groups:
            raise GroupConvError(
                f"need one feature list per output group, got {len(self.out_groups)} groups "
                f"and {len(self.uses)} feature lists"
            )
        out_groups = tuple(np.asarray(o, dtype=np.int64).ravel() for o in self.out_groups)
        uses = tuple(np.asarray(u, dtype=np.int64).ravel() for u in self.uses)
        seen = np.concatenate(out_groups)
        if seen.size != self.out_channels or not np.array_equal(
            np.sort(seen), np.arange(self.out_channels)
        ):
            raise GroupConvError(
                f"output groups must partition the {self.out_channels} output channels exactly once"
            )
        for k, u in enumerate(uses):
            if u.size == 0 or u.min() < 0 or u.max() >= features.shape[0]:
                raise GroupConvError(
                    f"output group {k} uses feature rows {u.tolist()} outside 0..{features.shape[0] - 1}"
                )
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "out_groups", out_groups)
        object.__setattr__(self, "uses", uses)

    def group_features(self, k: int) -> np.ndarray:
        """``F_k``: the ``r_k x n`` features output group k may use."""
        return self.features[self.uses[k]]

    @cached_property
    def unit_rows(self) -> np.ndarray:
        """Per feature row, the channel it copies (one entry equal to 1, rest 0), else -1."""
        nonzero = self.features != 0
        single = nonzero.sum(axis=1) == 1
        channel = np.argmax(nonzero, axis=1)
        unit = single & (self.features[np.arange(len(channel)), channel] == 1.0)
        return np.where(unit, channel, -1)

    @cached_property
    def _bases(self) -> tuple[tuple[np.ndarray | None, int], ...]:
        return tuple(_row_basis(self.group_features(k)) for k in range(len(self.uses)))

    def group_basis(self, k: int) -> tuple[np.ndarray | None, int]:
        """``(C, r)``: ``C @ F_k`` has orthonormal rows spanning ``F_k``'s row space, r = rank.

        ``C`` is None when the features of group k are already independent (the usual
        case: GC, BGC with N >= 3), so the solvers use them as they are.
        """
        return self._bases[k]

    def group_rank(self, k: int) -> int:
        """Rank of ``F_k`` (the number of independent features; unknowns = rank x K)."""
        return self._bases[k][1]

    def params(self, taps: int) -> int:
        """Weights of the structured conv: sum over groups of outputs x features x K."""
        return sum(int(o.size) * int(u.size) * taps for o, u in zip(self.out_groups, self.uses))


def _row_basis(features: np.ndarray) -> tuple[np.ndarray | None, int]:
    """``(None, r)`` if the r feature rows are independent, else ``(C, rank)`` (see group_basis)."""
    rows = features.shape[0]
    nonzero = features != 0
    if np.all(nonzero.sum(axis=1) == 1) and np.unique(np.argmax(nonzero, axis=1)).size == rows:
        return None, rows  # distinct single channels: orthogonal rows
    gram = features @ features.T
    try:
        pivots = np.diag(np.linalg.cholesky(gram)) ** 2
        if pivots.min() > 1e-10 * pivots.max():
            return None, rows
    except np.linalg.LinAlgError:
        pass
    u, sv, _ = np.linalg.svd(features, full_matrices=False)
    tol = max(features.shape) * np.finfo(float).eps * sv[0]
    rank = int((sv > tol).sum())
    return (u[:, :rank] / sv[:rank]).T, rank


@runtime_checkable
class Structure(Protocol):
    """Anything with a ``name``, a ``groups`` count and a ``layout(n, m)`` method."""

    name: str
    groups: int

    def layout(self, in_channels: int, out_channels: int) -> FeatureLayout:
        """The feature declaration for a dense conv with n inputs and m outputs."""
        ...


def _even_blocks(size: int, groups: int) -> list[np.ndarray]:
    step = size // groups
    return [np.arange(k * step, (k + 1) * step) for k in range(groups)]


def _check_divides(groups: int, in_channels: int, out_channels: int) -> None:
    v.divides("groups", groups, "in_channels", in_channels)
    v.divides("groups", groups, "out_channels", out_channels)


@dataclass(frozen=True)
class GCStructure:
    """Group convolution (BGC paper Eq. 2.3): output group k sees input group k only."""

    groups: int
    name: str = field(default="gc", init=False)

    def __post_init__(self) -> None:
        v.positive_int("groups", self.groups)

    def layout(self, in_channels: int, out_channels: int) -> FeatureLayout:
        _check_divides(self.groups, in_channels, out_channels)
        return FeatureLayout(
            in_channels=in_channels,
            out_channels=out_channels,
            features=np.eye(in_channels),
            out_groups=tuple(_even_blocks(out_channels, self.groups)),
            uses=tuple(_even_blocks(in_channels, self.groups)),
            name=self.name,
            groups=self.groups,
        )


@dataclass(frozen=True)
class BGCStructure:
    """Balanced group convolution (BGC paper Eq. 3.1): GC plus a conv of the group mean.

    Output group k sees its own input group ``x^k`` and the intergroup mean
    ``x_bar = (1/N) sum_l x^l`` (n/N channels): ``y^k = W^kk x^k + W_bar^k x_bar``.
    With N = 1 or 2 the features span every channel and the error is 0.
    """

    groups: int
    name: str = field(default="bgc", init=False)

    def __post_init__(self) -> None:
        v.positive_int("groups", self.groups)

    def layout(self, in_channels: int, out_channels: int) -> FeatureLayout:
        _check_divides(self.groups, in_channels, out_channels)
        size = in_channels // self.groups
        mean = np.zeros((size, in_channels))
        for l in range(self.groups):
            mean[:, l * size : (l + 1) * size] += np.eye(size) / self.groups
        features = np.vstack([np.eye(in_channels), mean])
        mean_rows = np.arange(in_channels, in_channels + size)
        uses = tuple(np.concatenate([own, mean_rows]) for own in _even_blocks(in_channels, self.groups))
        return FeatureLayout(
            in_channels=in_channels,
            out_channels=out_channels,
            features=features,
            out_groups=tuple(_even_blocks(out_channels, self.groups)),
            uses=uses,
            name=self.name,
            groups=self.groups,
        )


@dataclass(frozen=True)
class PartitionedGCStructure:
    """GC over any channel partition: output channel i sees the input channels with its label.

    ``in_labels[j]`` and ``out_labels[i]`` name the group of input channel j and output
    channel i. Groups may have unequal sizes (a learned grouping); every output label
    must also label at least one input channel. :meth:`permuted` builds the permuted GC
    (a fixed or random channel shuffle before grouping).
    """

    in_labels: tuple[int, ...]
    out_labels: tuple[int, ...]
    name: str = "partitioned-gc"

    def __post_init__(self) -> None:
        object.__setattr__(self, "in_labels", tuple(int(a) for a in self.in_labels))
        object.__setattr__(self, "out_labels", tuple(int(a) for a in self.out_labels))
        missing = sorted(set(self.out_labels) - set(self.in_labels))
        if missing:
            raise GroupConvError(f"output group labels {missing} have no input channels")

    @property
    def groups(self) -> int:
        """Number of distinct output groups."""
        return len(set(self.out_labels))

    @classmethod
    def permuted(
        cls,
        groups: int,
        in_channels: int,
        out_channels: int,
        in_permutation: Sequence[int] | None = None,
        out_permutation: Sequence[int] | None = None,
        seed: int | None = None,
    ) -> PartitionedGCStructure:
        """GC with N equal groups taken in a permuted channel order (random if not given).

        Input group k holds channels ``in_permutation[k*n/N : (k+1)*n/N]``; the same for
        the outputs.
        """
        v.positive_int("groups", groups)
        _check_divides(groups, in_channels, out_channels)
        rng = np.random.default_rng(seed)
        perms = []
        for size, perm, label in (
            (in_channels, in_permutation, "in_permutation"),
            (out_channels, out_permutation, "out_permutation"),
        ):
            p = rng.permutation(size) if perm is None else np.asarray(perm, dtype=np.int64)
            if not np.array_equal(np.sort(p), np.arange(size)):
                raise GroupConvError(f"{label} must be a permutation of 0..{size - 1}")
            perms.append(p)
        in_labels = np.empty(in_channels, dtype=np.int64)
        in_labels[perms[0]] = np.repeat(np.arange(groups), in_channels // groups)
        out_labels = np.empty(out_channels, dtype=np.int64)
        out_labels[perms[1]] = np.repeat(np.arange(groups), out_channels // groups)
        return cls(tuple(in_labels), tuple(out_labels), name="permuted-gc")

    def layout(self, in_channels: int, out_channels: int) -> FeatureLayout:
        if len(self.in_labels) != in_channels or len(self.out_labels) != out_channels:
            raise GroupConvError(
                f"partition labels cover {len(self.in_labels)} inputs and {len(self.out_labels)} "
                f"outputs, but the conv has in_channels={in_channels}, out_channels={out_channels}"
            )
        in_labels, out_labels = np.asarray(self.in_labels), np.asarray(self.out_labels)
        groups = sorted(set(self.out_labels))
        return FeatureLayout(
            in_channels=in_channels,
            out_channels=out_channels,
            features=np.eye(in_channels),
            out_groups=tuple(np.flatnonzero(out_labels == g) for g in groups),
            uses=tuple(np.flatnonzero(in_labels == g) for g in groups),
            name=self.name,
            groups=len(groups),
        )


@dataclass(frozen=True)
class DenseStructure:
    """The standard conv itself (one group seeing every channel): error exactly 0."""

    groups: int = field(default=1, init=False)
    name: str = field(default="dense", init=False)

    def layout(self, in_channels: int, out_channels: int) -> FeatureLayout:
        return FeatureLayout(
            in_channels=in_channels,
            out_channels=out_channels,
            features=np.eye(in_channels),
            out_groups=(np.arange(out_channels),),
            uses=(np.arange(in_channels),),
            name=self.name,
            groups=1,
        )


def structure(method: str, groups: int) -> Structure:
    """The structure called ``method`` (``"gc"`` or ``"bgc"``) with ``groups`` groups."""
    v.one_of("method", method, METHODS)
    return GCStructure(groups) if method == "gc" else BGCStructure(groups)
