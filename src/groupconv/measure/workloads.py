"""What a campaign measures: one conv layer in some form, or a catalogue network.

A workload is a frozen dataclass of plain values: it knows its configuration columns
(:meth:`key_fields`), its cost (:attr:`macs`) and how to build its torch module and
input (:meth:`build`, which imports torch). Constructing one validates it, so a
campaign never fails half-way on a bad configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import _validate as v
from ..cost import ConvLayer
from ..cost.layer import dtype_bytes
from ..errors import GroupConvError
from ..networks import ARCHITECTURES, VARIANTS, build_module, build_network, count_module, paper_networks
from .protocol import MODES

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "LAYER_METHODS",
    "DTYPES",
    "LayerWorkload",
    "NetworkWorkload",
    "layer_workloads",
    "network_workloads",
    "paper_workloads",
    "torch_dtype",
]

#: Layer forms (``method`` column of layer rows).
LAYER_METHODS: tuple[str, ...] = ("dense", "gc", "dw", "bgc")
#: dtypes a campaign accepts.
DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16", "float64")


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype called ``name`` (one of :data:`DTYPES`)."""
    import torch

    return getattr(torch, v.one_of("dtype", name, DTYPES))


@dataclass(frozen=True)
class LayerWorkload:
    """One conv layer ``in_channels -> out_channels``, stride 1, "same" padding, no bias.

    ``groups`` is the layer's number of groups N: 1 for ``dense``, ``in_channels`` for
    ``dw``; ``height`` x ``width`` is the input (and output) size.
    """

    method: str
    in_channels: int
    out_channels: int
    kernel: int
    height: int
    width: int
    groups: int
    batch: int
    mode: str = "forward_backward"

    def __post_init__(self) -> None:
        v.one_of("method", self.method, LAYER_METHODS)
        v.one_of("mode", self.mode, MODES)
        for name in ("in_channels", "out_channels", "kernel", "height", "width", "groups", "batch"):
            v.positive_int(name, getattr(self, name))
        if self.method == "dense" and self.groups != 1:
            raise GroupConvError(f"method 'dense' has groups=1, got groups={self.groups}")
        if self.method == "dw" and self.groups != self.in_channels:
            raise GroupConvError(
                f"method 'dw' has groups=in_channels={self.in_channels}, got groups={self.groups}"
            )
        v.divides("groups", self.groups, "in_channels", self.in_channels)
        v.divides("groups", self.groups, "out_channels", self.out_channels)

    def conv_layers(self) -> list[ConvLayer]:
        """The convolutions the module runs, as plain shapes (BGC: the grouped conv and
        the balancing conv ``n/N -> m`` on the group mean, Eq. 3.1)."""
        shape = dict(kernel=self.kernel, out_height=self.height, out_width=self.width, batch=self.batch)
        main = ConvLayer(self.in_channels, self.out_channels, groups=self.groups, name="conv", **shape)
        if self.method != "bgc":
            return [main]
        balance = ConvLayer(self.in_channels // self.groups, self.out_channels, name="balance", **shape)
        return [main, balance]

    @property
    def macs(self) -> int:
        """MACs per frame; for BGC ``2 K m n D / N`` (Eq. 3.14 without the mean's ``n D`` adds)."""
        return sum(layer.macs for layer in self.conv_layers())

    @property
    def params(self) -> int:
        """Weights (no bias): ``K m n / N``, BGC ``2 K m n / N`` (BGC Table 1)."""
        return sum(layer.params for layer in self.conv_layers())

    def min_memory_bytes(self, dtype: str = "float32") -> int:
        """A lower bound on the memory a measurement needs: weights and the input and
        output batches (``forward``), each twice with gradients (``forward_backward``)."""
        per = sum(layer.params + self.batch * layer.activations for layer in self.conv_layers())
        return _min_bytes(per, self.mode, dtype)

    def key_fields(self) -> dict[str, object]:
        """The configuration columns of this workload's row."""
        return {
            "workload": "layer",
            "arch": None,
            "variant": None,
            "group": None,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel": self.kernel,
            "height": self.height,
            "width": self.width,
            "groups": self.groups,
            "batch": self.batch,
            "method": self.method,
            "mode": self.mode,
        }

    @property
    def label(self) -> str:
        return (
            f"{self.method} {self.in_channels}->{self.out_channels} k{self.kernel} "
            f"{self.height}x{self.width} N={self.groups} B={self.batch} {self.mode}"
        )

    def build(self, device: str | torch.device = "cpu", dtype: str = "float32") -> tuple[torch.nn.Module, torch.Tensor]:
        """The layer module and a random input batch (which requires a gradient)."""
        import torch

        from ..nn import make_layer

        kind = torch_dtype(dtype)
        module = make_layer(self.method, self.in_channels, self.out_channels, self.kernel, self.groups)
        module = module.to(device=device, dtype=kind)
        x = torch.randn(self.batch, self.in_channels, self.height, self.width, device=device, dtype=kind)
        return module, x.requires_grad_(True)


@dataclass(frozen=True)
class NetworkWorkload:
    """A catalogue network (:func:`groupconv.networks.build_module`) on square images.

    ``image_size`` is 224 in the E2GC paper; smaller sizes make quick CPU checks (the
    networks end with global average pooling, so any size that survives the strides works).
    """

    arch: str
    variant: str
    group: int
    batch: int
    mode: str = "forward_backward"
    image_size: int = 224

    def __post_init__(self) -> None:
        v.one_of("architecture", self.arch, ARCHITECTURES)
        v.one_of("variant", self.variant, VARIANTS)
        v.positive_int("group", self.group)
        v.positive_int("batch", self.batch)
        v.one_of("mode", self.mode, MODES)
        if v.positive_int("image_size", self.image_size) < 32:
            raise GroupConvError(f"image_size must be at least 32, got {self.image_size}")
        build_network(self.arch, self.variant, self.group)  # raises if group does not fit
        # Both networks downsample by 32 with "same" padding, so the last batch norm sees
        # batch x ceil(size/32)^2 values per channel; in training mode (forward_backward)
        # batch norm needs more than one.
        side = -(-self.image_size // 32)
        if self.mode == "forward_backward" and self.batch * side * side < 2:
            raise GroupConvError(
                f"image_size={self.image_size} with batch={self.batch} leaves a {side}x{side} map "
                "with 1 value per channel for the last batch norm, which needs more than one in "
                "training mode (forward_backward); use a batch >= 2, an image size >= 33, or mode forward"
            )

    @property
    def macs(self) -> int:
        """MACs per frame at ``image_size`` (the catalogue's count at 224)."""
        network = build_network(self.arch, self.variant, self.group)
        if self.image_size == 224:
            return network.macs
        return self._count().macs

    def _count(self):
        import torch

        module = build_module(self.arch, self.variant, self.group, device="meta")
        with torch.no_grad():
            return count_module(module, (1, 3, self.image_size, self.image_size))

    def min_memory_bytes(self, dtype: str = "float32") -> int:
        """A lower bound on the memory a measurement needs: the weights and every conv's
        input and output batches (``forward``), each twice with gradients (``forward_backward``).

        Counted from the catalogue's layers at 224 and scaled by ``(image_size / 224)^2``, so
        that no torch module is built: at 224 every map is 224 / 2^k exactly, and at another
        size it is ceil(size / 2^k) >= (size / 224) (224 / 2^k), so the scaled count is a
        lower bound.
        """
        layers = build_network(self.arch, self.variant, self.group).layers
        scale = (self.image_size / 224) ** 2
        acts = sum(layer.activations for layer in layers if layer.kind == "conv")
        per = sum(layer.params for layer in layers) + int(self.batch * acts * scale)
        return _min_bytes(per, self.mode, dtype)

    def key_fields(self) -> dict[str, object]:
        return {
            "workload": "network",
            "arch": self.arch,
            "variant": self.variant,
            "group": self.group,
            "in_channels": None,
            "out_channels": None,
            "kernel": None,
            "height": self.image_size,
            "width": self.image_size,
            "groups": None,
            "batch": self.batch,
            "method": "network",
            "mode": self.mode,
        }

    @property
    def label(self) -> str:
        return f"{self.arch} {self.variant} {self.group} {self.image_size}px B={self.batch} {self.mode}"

    def build(self, device: str | torch.device = "cpu", dtype: str = "float32") -> tuple[torch.nn.Module, torch.Tensor]:
        """The network module and a random image batch (no gradient: it is the input)."""
        import torch

        kind = torch_dtype(dtype)
        module = build_module(self.arch, self.variant, self.group).to(device=device, dtype=kind)
        x = torch.randn(self.batch, 3, self.image_size, self.image_size, device=device, dtype=kind)
        return module, x


def _min_bytes(elements: int, mode: str, dtype: str) -> int:
    """``elements`` tensors' elements in bytes of ``dtype``, doubled for gradients."""
    return elements * dtype_bytes(dtype) * (2 if mode == "forward_backward" else 1)


def _unique(values: Iterable[object]) -> list:
    return list(dict.fromkeys(values))


def layer_workloads(
    in_channels: int,
    out_channels: int,
    kernel: int,
    size: int | tuple[int, int],
    groups: Sequence[int],
    methods: Sequence[str] = ("gc", "bgc"),
    batches: Sequence[int] = (1,),
    modes: Sequence[str] = ("forward_backward",),
) -> list[LayerWorkload]:
    """Every combination of method, groups, batch and mode, each configuration once.

    ``dense`` and ``dw`` do not depend on ``groups`` (1 and ``in_channels``), so they
    appear once per batch and mode whatever ``groups`` lists.
    """
    height, width = size if isinstance(size, tuple) else (size, size)
    if not groups and any(m in ("gc", "bgc") for m in methods):
        raise GroupConvError("groups is empty; give at least one number of groups")
    out: list[LayerWorkload] = []
    for mode in _unique(modes):
        for method in _unique(methods):
            choices = [1] if method == "dense" else [in_channels] if method == "dw" else groups
            for n_groups in _unique(choices):
                for batch in _unique(batches):
                    out.append(
                        LayerWorkload(
                            method, in_channels, out_channels, kernel, height, width, n_groups, batch, mode
                        )
                    )
    return _unique(out)


def network_workloads(
    arch: str,
    variant: str,
    groups: Sequence[int],
    batches: Sequence[int] = (1, 4, 16),
    modes: Sequence[str] = ("forward_backward",),
    image_size: int = 224,
) -> list[NetworkWorkload]:
    """Every combination of group setting, batch and mode for one architecture and variant."""
    if not groups:
        raise GroupConvError("group is empty; give at least one group setting")
    return [
        NetworkWorkload(arch, variant, group, batch, mode, image_size)
        for mode in _unique(modes)
        for group in _unique(groups)
        for batch in _unique(batches)
    ]


def paper_workloads(
    batches: Sequence[int] = (1, 4, 16),
    modes: Sequence[str] = ("forward_backward",),
    archs: Sequence[str] | None = None,
    image_size: int = 224,
) -> list[NetworkWorkload]:
    """Every network of E2GC Tables III and IV at every batch: the paper's EPF campaign.

    ``archs`` limits it to some architectures (default: both).
    """
    chosen = list(ARCHITECTURES) if archs is None else [v.one_of("architecture", a, ARCHITECTURES) for a in archs]
    return [
        NetworkWorkload(net.arch, net.variant, net.group, batch, mode, image_size)
        for mode in _unique(modes)
        for net in paper_networks()
        if net.arch in chosen
        for batch in _unique(batches)
    ]
