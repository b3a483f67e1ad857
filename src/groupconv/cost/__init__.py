"""Cost model of group convolution: plain-shape counts, sympy forms and numpy twins.

Imports neither torch nor zeus.
"""

from .layer import DTYPE_BYTES, ConvLayer, dtype_bytes

__all__ = ["ConvLayer", "DTYPE_BYTES", "dtype_bytes"]
