"""Torch-free optimisers over one choice per layer (numpy only).

* :mod:`~groupconv.optimize.knapsack` - :func:`search`, the exact multiple-choice
  knapsack (Pareto dynamic programme) under params and MACs budgets; :func:`brute_force`,
  its enumeration reference; :func:`layer_fronts` and :func:`backtrack`, the layer-by-layer
  programme both optimisers share.
* :mod:`~groupconv.optimize.pareto` - :func:`pareto_front`, the exact front of total cost
  against total error; :func:`brute_force_front`.

Below ``fit`` and ``design`` in the import order; imports neither torch nor zeus.
"""

from .knapsack import SearchResult, backtrack, brute_force, layer_fronts, search
from .pareto import FrontPoint, brute_force_front, pareto_front

__all__ = [
    "FrontPoint",
    "SearchResult",
    "backtrack",
    "brute_force",
    "brute_force_front",
    "layer_fronts",
    "pareto_front",
    "search",
]
