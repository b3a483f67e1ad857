"""One convolution (or linear) layer as a plain shape, and what it costs.

Counting conventions (used everywhere in groupconv):

* ``macs``: multiply-accumulate operations, one multiply-add = 1 MAC, **per frame**
  (one input image). ``flops = 2 * macs``.
* ``params``: weights only, n (m / g) d_k^2 (E2GC Table II's P), the same meaning as
  :attr:`groupconv.networks.Network.params` and ``ModelCount.params``; the bias is
  ``bias_params`` and ``total_params = params + bias_params``.
* ``activations``: input plus output feature-map elements, **per frame**
  (E2GC Table I: A = (n + m) h w when input and output have the same size).
* Memory traffic: weights (and bias) are read once per batch, activations once per
  frame, so a batch of B frames moves ``total_params + B * activations`` elements. The arithmetic
  intensity is then ``B * macs / (params + B * activations)``, which is the paper's
  AI = M_c / (P + A) (E2GC Table I/II) at B = 1.

The formulas here are exact integer counts on general shapes (stride, rectangular
kernels, different input and output sizes). :mod:`groupconv.cost.symbolic` holds the
paper's closed forms; the tests check that the two agree where the paper's assumptions
hold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import _validate as v
from ..errors import GroupConvError
from ..vocab import DTYPE_BYTES

__all__ = ["ConvLayer", "DTYPE_BYTES", "dtype_bytes"]



def dtype_bytes(dtype: str | int) -> int:
    """Bytes per element for a dtype name (``"float32"``) or a positive int of bytes."""
    if isinstance(dtype, str):
        if dtype not in DTYPE_BYTES:
            raise GroupConvError(
                f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}"
            )
        return DTYPE_BYTES[dtype]
    return v.positive_int("dtype bytes", dtype)


@dataclass(frozen=True)
class ConvLayer:
    """A 2-D convolution ``in_channels -> out_channels`` with ``groups`` groups.

    Parameters
    ----------
    in_channels, out_channels : int
        m and n in the E2GC paper (input and output feature maps).
    kernel : int or (int, int)
        Kernel size d_k (square) or (height, width).
    out_height, out_width : int
        Output feature-map size h x w.
    groups : int
        Number of groups g; ``groups == in_channels`` is a depthwise conv.
    stride : int
        Stride; only used to derive the input size when it is not given.
    batch : int
        Frames per batch B (weights are read once per batch).
    bias : bool
        Whether the layer has a bias (in ``bias_params`` and ``total_params``, not in
        ``params`` or ``macs``).
    in_height, in_width : int, optional
        Input size; defaults to ``out_height * stride`` and ``out_width * stride``
        ("same" padding).
    name : str
        Free-form label, e.g. ``"conv2_1.dw"``.
    kind : {"conv", "linear"}
        A linear layer is a 1x1 conv on a 1x1 map (see :meth:`linear`).
    """

    in_channels: int
    out_channels: int
    kernel: int | tuple[int, int] = 1
    out_height: int = 1
    out_width: int = 1
    groups: int = 1
    stride: int = 1
    batch: int = 1
    bias: bool = False
    in_height: int | None = None
    in_width: int | None = None
    name: str = ""
    kind: str = "conv"

    def __post_init__(self) -> None:
        v.positive_int("in_channels", self.in_channels)
        v.positive_int("out_channels", self.out_channels)
        kernel = self.kernel if isinstance(self.kernel, tuple) else (self.kernel, self.kernel)
        if len(kernel) != 2:
            raise GroupConvError(f"kernel must be an int or a pair, got {self.kernel!r}")
        for k in kernel:
            v.positive_int("kernel", k)
        object.__setattr__(self, "kernel", (int(kernel[0]), int(kernel[1])))
        v.positive_int("out_height", self.out_height)
        v.positive_int("out_width", self.out_width)
        v.positive_int("groups", self.groups)
        v.positive_int("stride", self.stride)
        v.positive_int("batch", self.batch)
        if self.in_height is not None:
            v.positive_int("in_height", self.in_height)
        if self.in_width is not None:
            v.positive_int("in_width", self.in_width)
        v.one_of("layer kind", self.kind, ("conv", "linear"))
        v.divides("groups", self.groups, "in_channels", self.in_channels)
        v.divides("groups", self.groups, "out_channels", self.out_channels)

    @classmethod
    def linear(
        cls, in_features: int, out_features: int, *, bias: bool = True, batch: int = 1, name: str = ""
    ) -> ConvLayer:
        """A fully connected layer, counted as a 1x1 conv on a 1x1 map."""
        return cls(in_features, out_features, bias=bias, batch=batch, name=name, kind="linear")

    # --- shape helpers -------------------------------------------------------------
    @property
    def kernel_h(self) -> int:
        return self.kernel[0]  # type: ignore[index]

    @property
    def kernel_w(self) -> int:
        return self.kernel[1]  # type: ignore[index]

    @property
    def taps(self) -> int:
        """Kernel taps d_k^2 (K in the BGC paper: parameters of a 1-channel-to-1-channel conv)."""
        return self.kernel_h * self.kernel_w

    @property
    def input_height(self) -> int:
        return self.in_height if self.in_height is not None else self.out_height * self.stride

    @property
    def input_width(self) -> int:
        return self.in_width if self.in_width is not None else self.out_width * self.stride

    @property
    def group_size(self) -> int:
        """Input channels per group, G = m / g (E2GC Table I)."""
        return self.in_channels // self.groups

    @property
    def is_depthwise(self) -> bool:
        return self.groups == self.in_channels and self.groups > 1

    # --- counts (E2GC Table II) ----------------------------------------------------
    @property
    def weight_params(self) -> int:
        """Weights n * (m / g) * d_k^2 (E2GC Table II, P)."""
        return self.out_channels * self.group_size * self.taps

    @property
    def params(self) -> int:
        """Weights only (E2GC Table II, P); the same as :attr:`weight_params`."""
        return self.weight_params

    @property
    def bias_params(self) -> int:
        """The bias, ``out_channels`` when ``bias=True``, else 0."""
        return self.out_channels if self.bias else 0

    @property
    def total_params(self) -> int:
        """Weights plus bias: every parameter of the layer."""
        return self.weight_params + self.bias_params

    @property
    def macs(self) -> int:
        """MACs per frame, n * (m / g) * d_k^2 * h * w (E2GC Table II, M_c)."""
        return self.weight_params * self.out_height * self.out_width

    @property
    def flops(self) -> int:
        """FLOPs per frame, 2 * macs."""
        return 2 * self.macs

    @property
    def input_activations(self) -> int:
        return self.in_channels * self.input_height * self.input_width

    @property
    def output_activations(self) -> int:
        return self.out_channels * self.out_height * self.out_width

    @property
    def activations(self) -> int:
        """Input + output feature-map elements per frame (E2GC Table I, A)."""
        return self.input_activations + self.output_activations

    @property
    def elements_moved(self) -> int:
        """Elements read/written per batch: weights and bias once, activations once per frame."""
        return self.total_params + self.batch * self.activations

    def bytes_moved(self, dtype: str | int = "float32") -> int:
        """Bytes moved per batch for ``dtype`` (a name such as ``"float16"`` or a byte count)."""
        return self.elements_moved * dtype_bytes(dtype)

    @property
    def arithmetic_intensity(self) -> float:
        """MACs per element moved, B*M_c / (P + b + B*A) (b: bias); the paper's M_c/(P+A) at B = 1."""
        return self.batch * self.macs / self.elements_moved

    # --- variants -------------------------------------------------------------------
    def with_groups(self, groups: int) -> ConvLayer:
        """The same layer with another number of groups."""
        return replace(self, groups=groups)

    def with_batch(self, batch: int) -> ConvLayer:
        """The same layer with another batch size."""
        return replace(self, batch=batch)

    def as_dict(self) -> dict[str, object]:
        """Shape and counts as a flat dict of plain ints/floats/strings (for JSON and tables)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel": self.kernel_h if self.kernel_h == self.kernel_w else list(self.kernel),
            "out_height": self.out_height,
            "out_width": self.out_width,
            "groups": self.groups,
            "stride": self.stride,
            "batch": self.batch,
            "params": self.params,
            "bias_params": self.bias_params,
            "macs": self.macs,
            "activations": self.activations,
            # the paper's arithmetic intensity is per element; elsewhere (count's op and module
            # tables, the roofline) it is per byte: each column says its unit
            "macs_per_element": self.arithmetic_intensity,
            "macs_per_byte_float32": self.batch * self.macs / self.bytes_moved("float32"),
        }
