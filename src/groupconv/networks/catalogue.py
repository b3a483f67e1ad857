"""MobileNet-V1 and ResNeXt-50 (32x4d) in E2GC and FgGC variants, as lists of layers.

This is the torch-free half of :mod:`groupconv.networks`: every network is a tuple of
:class:`~groupconv.cost.ConvLayer` (its convolutions and its fully connected layer, in
execution order) plus the count of its batch-norm parameters.

The variants (E2GC paper, section III-B and IV)
-----------------------------------------------
Both networks are built from "group conv followed by a 1x1 conv" modules; only the
3x3 group conv of each module changes with the variant:

* ``e2gc`` (constant group size): ``group`` is G, the channels per group, the same in
  every module, so a 3x3 conv on m channels gets g = m / G groups. E2GC G=1 is
  depthwise (the original MobileNet-V1).
* ``fggc`` (fixed number of groups): ``group`` is g, the same number of groups in every
  module, so G = m / g grows with depth. FgGC g=32 is the original ResNeXt-50 (32x4d).

The channel widths never change with the variant (the paper's Tables III and IV fix
this: for example ResNeXt-50 FgGC g=32 and E2GC G=4 differ by exactly the 3x3 MACs that
G = 4, 8, 16, 32 in the four stages save compared with G = 4 everywhere). The stem
conv, the 1x1 convs, the shortcut (downsample) convs and the classifier are dense.

Counting conventions (the paper's, found by reproducing Tables III and IV)
--------------------------------------------------------------------------
* ``params``: weights of every conv and of the classifier, i.e. E2GC Table II's
  P = n (m / g) d_k^2 summed over the layers. No biases (the convs have none, each is
  followed by batch norm; the classifier's 1000 biases are left out, as in Table II's
  formula) and no batch norm. With this convention 20 of the 22 rows print exactly as
  in the paper; counting the classifier bias too, only 18 do.
  :attr:`Network.bias_params` (the classifier bias) and :attr:`Network.other_params`
  (batch-norm scale and shift) complete the count: :attr:`Network.total_params` is
  what ``sum(p.numel() for p in module.parameters())`` gives on the torch module.
* ``macs``: multiply-accumulates of every conv and the classifier, per 224x224 frame
  (E2GC Table II's M_c summed). Batch norm, ReLU, pooling, residual additions and the
  classifier's bias add are not counted.
* Input 3x224x224, 1000 classes; "same" padding (k // 2) everywhere; in ResNeXt the
  stride of a downsampling bottleneck sits on its 3x3 conv (as in torchvision and in
  the ResNeXt paper's 4.2 GFLOPs).

See ``docs/networks.md`` for how well every row of Tables III and IV is reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from .. import _validate as v
from ..cost import ConvLayer
from ..errors import GroupConvError
from ._totals import LayerTotals
from ..paper_tables import load_e2gc_tables

__all__ = [
    "ARCHITECTURES",
    "VARIANTS",
    "PAPER_GROUPS",
    "BASELINES",
    "IMAGE_SIZE",
    "NUM_CLASSES",
    "Network",
    "build_network",
    "paper_networks",
    "groups_for",
    "grouped_channels",
    "layer_groups",
    "compare_with_paper",
    "PARAMS_TOLERANCE",
    "MACS_TOLERANCE",
    "PRINTED_STEP",
]

#: Architectures of the E2GC paper's experiments.
ARCHITECTURES: tuple[str, ...] = ("mobilenet_v1", "resnext50")
#: ``e2gc``: ``group`` is G (channels per group); ``fggc``: ``group`` is g (number of groups).
VARIANTS: tuple[str, ...] = ("e2gc", "fggc")
#: The group settings of Tables III and IV.
PAPER_GROUPS: dict[str, tuple[int, ...]] = {
    "e2gc": (1, 2, 4, 8, 16, 32),
    "fggc": (2, 4, 8, 16, 32),
}
#: The published network each architecture's family starts from (variant, group).
BASELINES: dict[str, tuple[str, int]] = {
    "mobilenet_v1": ("e2gc", 1),  # depthwise separable (Howard et al. 2017)
    "resnext50": ("fggc", 32),  # ResNeXt-50 (32x4d) (Xie et al. 2017)
}
#: Input image side (the paper uses a single 224x224 centre crop).
IMAGE_SIZE: int = 224
#: ImageNet-1K classes of the classifier.
NUM_CLASSES: int = 1000

# MobileNet-V1 (width 1.0): stem conv 3->32 stride 2, then 13 modules
# (3x3 group conv with this stride, 1x1 conv to this many channels).
MOBILENET_V1_STEM_CHANNELS = 32
MOBILENET_V1_MODULES: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)

# ResNeXt-50 (32x4d): stem 7x7 conv 3->64 stride 2 + 3x3 max pool stride 2, then four
# stages of bottlenecks: (blocks, bottleneck width, output channels, stride).
RESNEXT50_STEM_CHANNELS = 64
RESNEXT50_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (3, 128, 256, 1),
    (4, 256, 512, 2),
    (6, 512, 1024, 2),
    (3, 1024, 2048, 2),
)


@dataclass(frozen=True)
class Network(LayerTotals):
    """A network as its conv and linear layers, in execution order.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    variant : str
        One of :data:`VARIANTS`.
    group : int
        G (channels per group) for ``e2gc``, g (number of groups) for ``fggc``.
    batch : int
        Frames per batch B; every layer carries it (weights are read once per batch).
    layers : tuple of ConvLayer
        Every conv and the classifier, named like the torch module's submodules.
    other_params : int
        Parameters outside ``layers``: batch-norm scale and shift (2 per channel).
    varied : tuple of str
        Names of the layers whose groups the variant sets (the 3x3 group convs).
    """

    arch: str
    variant: str
    group: int
    batch: int
    layers: tuple[ConvLayer, ...]
    other_params: int = 0
    varied: tuple[str, ...] = field(default=())

    @property
    def params(self) -> int:
        """Weights of the convs and the classifier, no biases (the paper's Params column)."""
        return sum(layer.weight_params for layer in self.layers)

    @property
    def bias_params(self) -> int:
        """Biases of the layers (the classifier's; the convs have none)."""
        return sum(layer.bias_params for layer in self.layers)

    @property
    def total_params(self) -> int:
        """Every trainable parameter: weights, biases and batch norm (= the torch module's)."""
        return self.params + self.bias_params + self.other_params

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``"resnext50 FgGC g=32"``."""
        symbol = "G" if self.variant == "e2gc" else "g"
        return f"{self.arch} {'E2GC' if self.variant == 'e2gc' else 'FgGC'} {symbol}={self.group}"

    def layer(self, name: str) -> ConvLayer:
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise GroupConvError(f"no layer named {name!r} in {self.label}")

    def with_batch(self, batch: int) -> Network:
        """The same network with every layer at batch size ``batch``."""
        batch = v.positive_int("batch", batch)
        return replace(self, batch=batch, layers=tuple(layer.with_batch(batch) for layer in self.layers))

    def layer_table(self) -> pd.DataFrame:
        """One row per layer (``ConvLayer.as_dict()`` plus ``varied``)."""
        rows = [{**layer.as_dict(), "varied": layer.name in self.varied} for layer in self.layers]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """A readable per-layer table with totals (MACs per frame), as text."""
        header = ("name", "kind", "in -> out", "kernel", "stride", "output", "groups", "weights", "MACs")
        rows = []
        for layer in self.layers:
            kh, kw = layer.kernel
            rows.append((
                layer.name,
                layer.kind,
                f"{layer.in_channels} -> {layer.out_channels}",
                f"{kh}x{kw}",
                str(layer.stride),
                f"{layer.out_height}x{layer.out_width}",
                str(layer.groups),
                f"{layer.weight_params:,}",
                f"{layer.macs:,}",
            ))
        total = ("total", "", "", "", "", "", "", f"{self.params:,}", f"{self.macs:,}")
        widths = [max(len(row[i]) for row in [header, total, *rows]) for i in range(len(header))]
        right = {4, 6, 7, 8}

        def line(row) -> str:
            cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
            return "  ".join(cells).rstrip()

        rule = "-" * len(line(header))
        lines = [
            f"{self.label}, batch {self.batch}, input 3x224x224 (MACs per frame)",
            line(header),
            rule,
            *(line(row) for row in rows),
            rule,
            line(total),
            f"params {self.params / 1e6:.2f} M (weights, as in the paper), MACs {self.macs / 1e6:.2f} M per frame",
            f"with the classifier bias ({self.bias_params:,}) and batch norm ({self.other_params:,}) "
            f"the torch module has {self.total_params:,} parameters",
        ]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        """Totals and per-layer dicts as plain ints/strings (for JSON)."""
        return {
            "arch": self.arch,
            "variant": self.variant,
            "group": self.group,
            "batch": self.batch,
            "params": self.params,
            "bias_params": self.bias_params,
            "other_params": self.other_params,
            "total_params": self.total_params,
            "macs": self.macs,
            "flops": self.flops,
            "activations": self.activations,
            "layers": [layer.as_dict() for layer in self.layers],
        }


def groups_for(variant: str, group: int, channels: int, where: str = "") -> int:
    """Number of groups of a 3x3 conv on ``channels`` channels in ``variant``.

    E2GC keeps G = ``group`` channels per group, so g = channels / G; FgGC keeps
    g = ``group``. Raises :class:`GroupConvError` if the group does not divide the channels.
    """
    v.one_of("variant", variant, VARIANTS)
    group = v.positive_int("group", group)
    symbol = "G" if variant == "e2gc" else "g"
    if channels % group != 0:
        at = f" of {where}" if where else ""
        raise GroupConvError(
            f"group {symbol}={group} does not divide the {channels} channels{at} ({variant})"
        )
    return channels // group if variant == "e2gc" else group


def grouped_channels(arch: str) -> tuple[int, ...]:
    """Channels (in = out) of every grouped 3x3 conv of ``arch``, in network order.

    MobileNet-V1 has 13 (32, 64, 128, 128, 256, 256, 512 x 6, 1024), ResNeXt-50 has 16
    (the bottleneck widths 128 x 3, 256 x 4, 512 x 6, 1024 x 3).
    """
    v.one_of("architecture", arch, ARCHITECTURES)
    if arch == "mobilenet_v1":
        return (MOBILENET_V1_STEM_CHANNELS, *(n for n, _ in MOBILENET_V1_MODULES[:-1]))
    return tuple(width for blocks, width, _, _ in RESNEXT50_STAGES for _ in range(blocks))


def layer_groups(arch: str, variant: str, group: int, groups=None) -> tuple[int, ...]:
    """Number of groups g of every grouped 3x3 conv of ``arch``, in network order.

    ``groups`` (one positive int per grouped layer, see :func:`grouped_channels`), when
    given, is checked and returned; otherwise the variant's setting
    (:func:`groups_for`) is applied to every layer.
    """
    channels = grouped_channels(arch)
    if groups is None:
        return tuple(groups_for(variant, group, c, f"grouped layer {i}") for i, c in enumerate(channels))
    try:
        groups = tuple(groups)
    except TypeError:
        raise GroupConvError(f"groups must be a sequence of {len(channels)} ints, got {groups!r}") from None
    if len(groups) != len(channels):
        raise GroupConvError(f"{arch} has {len(channels)} grouped layers, got {len(groups)} group counts")
    out = []
    for i, (g, c) in enumerate(zip(groups, channels)):
        g = v.positive_int(f"groups[{i}]", g)
        if c % g != 0:
            raise GroupConvError(f"groups[{i}] = {g} does not divide the {c} channels of grouped layer {i} of {arch}")
        out.append(g)
    return tuple(out)


def _conv_out(size: int, kernel: int, stride: int) -> int:
    """Output side of a conv/pool with "same" padding k // 2."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def _conv(name: str, m: int, n: int, k: int, size_in: int, stride: int = 1, groups: int = 1) -> ConvLayer:
    size_out = _conv_out(size_in, k, stride)
    return ConvLayer(
        m, n, k, size_out, size_out, groups=groups, stride=stride,
        in_height=size_in, in_width=size_in, name=name,
    )


def _mobilenet_v1(variant: str, group: int, groups: tuple[int, ...]) -> tuple[list[ConvLayer], list[str]]:
    layers = [_conv("stem.conv", 3, MOBILENET_V1_STEM_CHANNELS, 3, IMAGE_SIZE, stride=2)]
    varied = []
    channels, size = MOBILENET_V1_STEM_CHANNELS, layers[0].out_height
    for i, (out_channels, stride) in enumerate(MOBILENET_V1_MODULES):
        name = f"blocks.{i}.gconv.conv"
        g = groups[i]
        gconv = _conv(name, channels, channels, 3, size, stride=stride, groups=g)
        pconv = _conv(f"blocks.{i}.pconv.conv", channels, out_channels, 1, gconv.out_height)
        layers += [gconv, pconv]
        varied.append(name)
        channels, size = out_channels, pconv.out_height
    layers.append(ConvLayer.linear(channels, NUM_CLASSES, bias=True, name="fc"))
    return layers, varied


def _resnext50(variant: str, group: int, groups: tuple[int, ...]) -> tuple[list[ConvLayer], list[str]]:
    stem = _conv("conv1", 3, RESNEXT50_STEM_CHANNELS, 7, IMAGE_SIZE, stride=2)
    layers, varied = [stem], []
    channels = RESNEXT50_STEM_CHANNELS
    size = _conv_out(stem.out_height, 3, 2)  # 3x3 max pool, stride 2, padding 1
    for s, (blocks, width, out_channels, stage_stride) in enumerate(RESNEXT50_STAGES, start=1):
        for b in range(blocks):
            prefix = f"layer{s}.{b}"
            stride = stage_stride if b == 0 else 1
            g = groups[len(varied)]
            conv1 = _conv(f"{prefix}.conv1", channels, width, 1, size)
            conv2 = _conv(f"{prefix}.conv2", width, width, 3, size, stride=stride, groups=g)
            conv3 = _conv(f"{prefix}.conv3", width, out_channels, 1, conv2.out_height)
            layers += [conv1, conv2, conv3]
            varied.append(conv2.name)
            if b == 0:  # projection shortcut: 1x1 conv with the block's stride
                layers.append(_conv(f"{prefix}.downsample.0", channels, out_channels, 1, size, stride=stride))
            channels, size = out_channels, conv3.out_height
    layers.append(ConvLayer.linear(channels, NUM_CLASSES, bias=True, name="fc"))
    return layers, varied


_BUILDERS = {"mobilenet_v1": _mobilenet_v1, "resnext50": _resnext50}


def build_network(arch: str, variant: str, group: int, batch: int = 1, *, groups=None) -> Network:
    """MobileNet-V1 or ResNeXt-50 (32x4d) with E2GC or FgGC modules, as layers.

    Parameters
    ----------
    arch : {"mobilenet_v1", "resnext50"}
    variant : {"e2gc", "fggc"}
    group : int
        G (channels per group) for ``e2gc``; g (number of groups) for ``fggc``. It must
        divide the channels of every 3x3 group conv.
    batch : int, default 1
        Frames per batch, carried by every layer.
    groups : sequence of int, optional
        The number of groups g of every grouped 3x3 conv, in network order (13 for
        MobileNet-V1, 16 for ResNeXt-50; :func:`grouped_channels`), overriding the
        variant's setting; ``variant`` and ``group`` are then only labels. This is how a
        recommended per-layer grouping (:mod:`groupconv.design`) is built.

    Returns
    -------
    Network

    Examples
    --------
    >>> net = build_network("resnext50", "fggc", 32)
    >>> net.params, net.macs
    (24959680, 4230479872)
    """
    v.one_of("architecture", arch, ARCHITECTURES)
    v.one_of("variant", variant, VARIANTS)
    group = v.positive_int("group", group)
    batch = v.positive_int("batch", batch)
    per_layer = layer_groups(arch, variant, group, groups)
    layers, varied = _BUILDERS[arch](variant, group, per_layer)
    # Every conv is followed by a batch norm with a scale and a shift per channel.
    bn_params = sum(2 * layer.out_channels for layer in layers if layer.kind == "conv")
    network = Network(arch, variant, group, 1, tuple(layers), other_params=bn_params, varied=tuple(varied))
    return network.with_batch(batch) if batch != 1 else network


def paper_networks(batch: int = 1) -> list[Network]:
    """Every network of Tables III and IV, in the tables' order."""
    return [
        build_network(arch, variant, group, batch)
        for arch in ARCHITECTURES
        for variant in VARIANTS
        for group in PAPER_GROUPS[variant]
    ]


#: Target agreement with Tables III/IV (relative): params within 0.5%, MACs within 0.1%.
PARAMS_TOLERANCE: float = 5e-3
MACS_TOLERANCE: float = 1e-3
#: Last printed digit of each table's columns, in counts: Table III prints params and
#: MACs in millions with 2 decimals; Table IV prints params in millions with 2 decimals
#: and MACs in billions with 2 decimals (3 significant digits).
PRINTED_STEP: dict[str, dict[str, int]] = {
    "III": {"params": 10_000, "macs": 10_000},
    "IV": {"params": 10_000, "macs": 10_000_000},
}


def compare_with_paper() -> pd.DataFrame:
    """Our params and MACs against Tables III and IV, one row per variant.

    Returns
    -------
    pandas.DataFrame
        Columns ``table, arch, variant, group``; for ``q`` in ``params`` and ``macs``:
        ``q_paper`` (the printed value, in counts), ``q`` (ours), ``q_rel_err``
        ((ours - paper) / paper), ``q_rounds_to_paper`` (ours lies within half a printed
        digit of the paper's value, i.e. printing ours the paper's way gives the paper's
        number) and ``q_within_tolerance`` (``|q_rel_err|`` within
        :data:`PARAMS_TOLERANCE` or :data:`MACS_TOLERANCE`).
    """
    rows = []
    for _, paper in load_e2gc_tables().iterrows():
        net = build_network(paper["network"], paper["variant"], int(paper["group"]))
        row: dict[str, object] = {
            "table": paper["table"],
            "arch": net.arch,
            "variant": net.variant,
            "group": net.group,
        }
        printed = {"params": paper["params_millions"] * 1e6, "macs": paper["macs_millions"] * 1e6}
        ours = {"params": net.params, "macs": net.macs}
        tolerance = {"params": PARAMS_TOLERANCE, "macs": MACS_TOLERANCE}
        for q in ("params", "macs"):
            rel_err = (ours[q] - printed[q]) / printed[q]
            row[f"{q}_paper"] = int(round(printed[q]))
            row[q] = ours[q]
            row[f"{q}_rel_err"] = rel_err
            row[f"{q}_rounds_to_paper"] = abs(ours[q] - printed[q]) <= PRINTED_STEP[paper["table"]][q] / 2
            row[f"{q}_within_tolerance"] = abs(rel_err) <= tolerance[q]
        rows.append(row)
    return pd.DataFrame(rows)
