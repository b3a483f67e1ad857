"""The names groupconv speaks, defined once: layer forms, architectures, dtypes.

Every package that takes one of these names as input validates it against the tuples
here (the CLI's ``choices`` too), so a new layer form, architecture or dtype is added in
one place. Bottom of the import order: imports nothing.
"""

from __future__ import annotations

__all__ = [
    "ARCHITECTURES",
    "DESIGN_METHODS",
    "DTYPE_BYTES",
    "FLOAT_DTYPES",
    "GROUPED_METHODS",
    "LAYER_METHODS",
    "VARIANTS",
]

#: Layer forms: standard (dense) convolution, group convolution (GC), depthwise, and
#: balanced group convolution (BGC paper Eq. 3.1); the ``method`` column of a runs file.
LAYER_METHODS: tuple[str, ...] = ("dense", "gc", "dw", "bgc")
#: The grouped forms a dense conv can be replaced by (approximability, design).
GROUPED_METHODS: tuple[str, ...] = ("gc", "bgc")
#: The options a layer may take in a design (``dense`` is always one of them).
DESIGN_METHODS: tuple[str, ...] = ("dense", *GROUPED_METHODS)

#: Architectures of the E2GC paper's experiments.
ARCHITECTURES: tuple[str, ...] = ("mobilenet_v1", "resnext50")
#: ``e2gc``: ``group`` is G (channels per group); ``fggc``: ``group`` is g (number of groups).
VARIANTS: tuple[str, ...] = ("e2gc", "fggc")

#: Bytes per element of the dtypes a user is likely to name.
DTYPE_BYTES: dict[str, int] = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int8": 1,
}
#: The floating-point dtypes layers and networks are measured in.
FLOAT_DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16", "float64")
