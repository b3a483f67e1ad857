"""Cost model of group convolution: plain-shape counts, sympy forms and numpy twins.

* :class:`ConvLayer` - exact integer counts of one layer (:mod:`.layer`).
* :mod:`.symbolic` - E2GC Tables I/II, Eq. 1-4 derived by sympy, BGC Table 1 and
  Eq. 3.14 (import it explicitly: ``from groupconv.cost import symbolic``; it loads sympy).
* :mod:`.numeric` - the same formulas as fast numpy functions over arrays.
* :mod:`.optimum` - the optimum number of groups of a layer (Eq. 2 and the full Eq. 1).
* :mod:`.pricer` - :class:`LayerPricer`, the protocol of what prices a layer per frame.

Imports neither torch nor zeus (nor sympy, until a formula is first evaluated).
"""

from .layer import DTYPE_BYTES, ConvLayer, dtype_bytes
from .numeric import (
    GC_VARIANTS,
    activations,
    arithmetic_intensity,
    balance_lhs,
    bgc_cost,
    energy_proxy,
    flops,
    gamma_from_const,
    gc_variant_cost,
    gc_variant_params,
    group_size,
    macs,
    memory_access_proxy,
    optimum_groups,
    params,
)
from .optimum import (
    DEFAULT_EQ2_BETA,
    OptimumG,
    admissible_groups,
    balance_groups_full,
    calibrate_gamma,
    eq2_groups,
    min_energy_groups,
    nearest_admissible_groups,
    optimum_g,
    optimum_g_for_layer,
)
from .pricer import OBJECTIVES, LayerPricer

__all__ = [
    "ConvLayer",
    "DTYPE_BYTES",
    "dtype_bytes",
    # numeric twins of the symbolic formulas
    "macs",
    "flops",
    "params",
    "activations",
    "arithmetic_intensity",
    "memory_access_proxy",
    "group_size",
    "gamma_from_const",
    "optimum_groups",
    "energy_proxy",
    "balance_lhs",
    "GC_VARIANTS",
    "gc_variant_params",
    "gc_variant_cost",
    "bgc_cost",
    # optimum number of groups
    "OptimumG",
    "admissible_groups",
    "nearest_admissible_groups",
    "balance_groups_full",
    "min_energy_groups",
    "optimum_g",
    "optimum_g_for_layer",
    "DEFAULT_EQ2_BETA",
    "eq2_groups",
    "calibrate_gamma",
    # what prices a layer
    "OBJECTIVES",
    "LayerPricer",
]
