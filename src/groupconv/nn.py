"""Torch modules for the convolution forms we measure: dense, GC, depthwise and BGC.

This is the one groupconv module that imports torch at its top; nothing in
``groupconv/__init__``, ``groupconv.cost`` or the CLI modules' import path imports it.

Notation follows the BGC paper (Lee, Park, Lee): a layer maps ``n`` input channels
(``in_channels``) to ``m`` output channels (``out_channels``); both are split into ``N``
groups (``groups``) of ``n_N = n / N`` and ``m_N = m / N`` channels.

* Group convolution (GC, BGC paper Eq. 2.3) keeps only the block diagonal
  ``W^{kk}``: one ``nn.Conv2d(n, m, groups=N)``.
* Balanced group convolution (BGC, Eq. 3.1) adds ``W-bar^k x-bar`` to every output group,
  where ``x-bar = (1/N) sum_k x^k`` is the mean of the input groups and each ``W-bar^k``
  maps ``n_N`` channels to ``m_N`` channels. Stacking the ``N`` blocks ``W-bar^k`` gives
  one ordinary convolution ``n_N -> m`` applied once to ``x-bar``, so a BGC layer is one
  grouped convolution plus one small dense convolution (not ``N`` separate convolutions).
"""

from __future__ import annotations

import torch
from torch import nn

from . import _validate as v
from .errors import GroupConvError

__all__ = ["BalancedGroupConv", "METHODS", "grouped_like", "make_layer", "set_submodule"]

#: Layer forms understood by :func:`make_layer` (and the ``method`` column of a runs CSV).
METHODS: tuple[str, ...] = ("dense", "gc", "dw", "bgc")


def _pair(name: str, value: int | tuple[int, int]) -> tuple[int, int]:
    """``3 -> (3, 3)``; a pair is checked and returned as a tuple of ints."""
    pair = value if isinstance(value, tuple) else (value, value)
    if len(pair) != 2:
        raise GroupConvError(f"{name} must be an int or a pair, got {value!r}")
    return (v.positive_int(name, pair[0]), v.positive_int(name, pair[1]))


def _same_padding(kernel: tuple[int, int]) -> tuple[int, int]:
    """Padding that keeps the spatial size at stride 1 for odd kernels: ``k // 2``."""
    return (kernel[0] // 2, kernel[1] // 2)


class BalancedGroupConv(nn.Module):
    """Balanced group convolution (BGC paper Eq. 3.1).

    ``y^k = W^{kk} x^k + W-bar^k x-bar`` with ``x-bar = (1/N) sum_l x^l``, computed as
    ``grouped(x) + balance(x-bar)``, where ``grouped`` is ``nn.Conv2d(n, m, groups=N)``
    (the block-diagonal part, Eq. 2.3) and ``balance`` is ``nn.Conv2d(n / N, m)`` (the
    ``N`` blocks ``W-bar^k`` stacked along the output channels).

    Parameters
    ----------
    in_channels, out_channels : int
        ``n`` and ``m`` in the BGC paper; both must be divisible by ``groups``.
    kernel_size : int or (int, int)
        Kernel size; ``K`` in the paper is its number of taps.
    groups : int
        ``N``, the number of groups. ``groups=1`` is allowed (then ``x-bar = x`` and the
        layer is the sum of two dense convolutions).
    stride : int, default 1
    padding : int or (int, int), optional
        Defaults to ``kernel_size // 2`` ("same" size at stride 1 for odd kernels).
    bias : bool, default False
        A bias on the grouped convolution (the balancing term has none: one bias suffices).

    Notes
    -----
    Parameters: ``2 K m n / N`` weights (BGC Table 1), plus ``m`` with ``bias=True``.
    Multiply-accumulates per frame: ``2 K m n D / N`` for the two convolutions, plus
    ``n D`` additions for the mean (Eq. 3.14), with ``D`` the output size.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        groups: int,
        stride: int = 1,
        padding: int | tuple[int, int] | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        n = v.positive_int("in_channels", in_channels)
        m = v.positive_int("out_channels", out_channels)
        big_n = v.positive_int("groups", groups)
        v.divides("groups", big_n, "in_channels", n)
        v.divides("groups", big_n, "out_channels", m)
        kernel = _pair("kernel_size", kernel_size)
        v.positive_int("stride", stride)
        pad = _same_padding(kernel) if padding is None else padding
        self.in_channels = n
        self.out_channels = m
        self.groups = big_n
        self.kernel_size = kernel
        #: The block-diagonal part W^{kk} (Eq. 2.3).
        self.grouped = nn.Conv2d(n, m, kernel, stride=stride, padding=pad, groups=big_n, bias=bias)
        #: The stacked balancing convolutions W-bar^k, n/N -> m channels (Eq. 3.1).
        self.balance = nn.Conv2d(n // big_n, m, kernel, stride=stride, padding=pad, bias=False)

    def group_mean(self, x: torch.Tensor) -> torch.Tensor:
        """The intergroup mean ``x-bar = (1/N) sum_k x^k``, shape ``(B, n/N, H, W)``."""
        self._check_input(x)
        return self._mean(x)

    def _mean(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.reshape(b, self.groups, c // self.groups, h, w).mean(dim=1)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise GroupConvError(
                f"input has shape {tuple(x.shape)}, BalancedGroupConv expects "
                f"(B, {self.in_channels}, H, W)"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.grouped(x) + self.balance(self._mean(x))

    def dense_weight(self) -> torch.Tensor:
        """The dense weight ``(m, n, kh, kw)`` of the standard convolution this layer equals.

        Block ``(k, l)`` is ``delta_{kl} W^{kk} + W-bar^k / N``: the mean spreads each
        ``W-bar^k`` over all ``N`` input groups with weight ``1/N``.
        """
        big_n, m_n = self.groups, self.out_channels // self.groups
        w_gc = self.grouped.weight  # (m, n/N, kh, kw): rows of group k hold W^{kk}
        w_bar = self.balance.weight / big_n  # (m, n/N, kh, kw)
        dense = w_bar.repeat(1, big_n, 1, 1)  # W-bar^k / N in every column block l
        blocks = dense.reshape(big_n, m_n, big_n, -1, *w_gc.shape[2:])
        diagonal = torch.arange(big_n)
        blocks[diagonal, :, diagonal] += w_gc.reshape(big_n, m_n, -1, *w_gc.shape[2:])
        return dense

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"groups={self.groups}"
        )


def make_layer(
    method: str,
    in_channels: int,
    out_channels: int,
    kernel: int | tuple[int, int],
    groups: int | None = None,
    *,
    stride: int = 1,
    bias: bool = False,
) -> nn.Module:
    """One convolution layer in the form ``method`` ("same" padding, no bias by default).

    Parameters
    ----------
    method : {"dense", "gc", "dw", "bgc"}
        ``dense``: standard convolution (``groups`` must be 1 or None);
        ``gc``: group convolution with ``groups`` groups (BGC Eq. 2.3);
        ``dw``: depthwise, ``groups = in_channels`` (None or that value);
        ``bgc``: :class:`BalancedGroupConv` with ``groups`` groups (BGC Eq. 3.1).
    in_channels, out_channels : int
    kernel : int or (int, int)
    groups : int, optional
        Required for ``gc`` and ``bgc``.

    Returns
    -------
    torch.nn.Module
        Maps ``(B, in_channels, H, W)`` to ``(B, out_channels, H / stride, W / stride)``.
    """
    v.one_of("method", method, METHODS)
    n = v.positive_int("in_channels", in_channels)
    m = v.positive_int("out_channels", out_channels)
    k = _pair("kernel", kernel)
    pad = _same_padding(k)
    if method == "dense":
        if groups not in (None, 1):
            raise GroupConvError(f"method 'dense' has groups=1, got groups={groups!r}")
        return nn.Conv2d(n, m, k, stride=stride, padding=pad, bias=bias)
    if method == "dw":
        if groups not in (None, n):
            raise GroupConvError(
                f"method 'dw' has groups=in_channels={n}, got groups={groups!r}"
            )
        v.divides("groups", n, "out_channels", m)
        return nn.Conv2d(n, m, k, stride=stride, padding=pad, groups=n, bias=bias)
    if groups is None:
        raise GroupConvError(f"method {method!r} needs groups, got None")
    big_n = v.positive_int("groups", groups)
    v.divides("groups", big_n, "in_channels", n)
    v.divides("groups", big_n, "out_channels", m)
    if method == "gc":
        return nn.Conv2d(n, m, k, stride=stride, padding=pad, groups=big_n, bias=bias)
    return BalancedGroupConv(n, m, k, big_n, stride=stride, bias=bias)


def grouped_like(conv: nn.Module, method: str, groups: int, *, name: str = "conv") -> nn.Module:
    """A GC conv or :class:`BalancedGroupConv` with the geometry of ``conv``.

    The new module has ``conv``'s channels, kernel, stride, padding (and, for GC, dilation
    and padding mode), a bias where ``conv`` has one, and ``conv``'s dtype and device; its
    weights are torch's default initialisation (the caller loads the ones it wants).

    Parameters
    ----------
    conv : torch.nn.Conv1d or torch.nn.Conv2d
    method : {"gc", "bgc"}
    groups : int
        ``N``; must divide both channel counts.
    name : str
        The layer's name, for the error message.
    """
    v.one_of("method", method, ("gc", "bgc"))
    groups = v.positive_int("groups", groups)
    dtype, device = conv.weight.dtype, conv.weight.device
    bias = conv.bias is not None
    if method == "gc":
        cls = nn.Conv1d if isinstance(conv, nn.Conv1d) else nn.Conv2d
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                  padding=conv.padding, dilation=conv.dilation, groups=groups, bias=bias,
                  padding_mode=conv.padding_mode)
        return new.to(device=device, dtype=dtype)
    if not isinstance(conv, nn.Conv2d) or any(d != 1 for d in conv.dilation) \
            or conv.padding_mode != "zeros" or len(set(conv.stride)) != 1:
        raise GroupConvError(
            f"layer {name!r} ({conv!r}) cannot become a BalancedGroupConv, which is 2-D with "
            f"dilation 1, zero padding and equal strides"
        )
    padding = conv.padding if isinstance(conv.padding, str) else tuple(conv.padding)
    new = BalancedGroupConv(conv.in_channels, conv.out_channels, tuple(conv.kernel_size), groups,
                            stride=conv.stride[0], padding=padding, bias=bias)
    return new.to(device=device, dtype=dtype)


def set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` in ``model`` at the dotted path ``name`` (``"features.3.conv"``)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
