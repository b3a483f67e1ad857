"""Designing networks: the exact per-layer search and the recommended grouping.

* :mod:`~groupconv.design.search` - :func:`search`, an exact multiple-choice knapsack
  (Pareto dynamic programme) under params and MACs budgets; :func:`brute_force`, its
  enumeration reference. Torch-free.
* :mod:`~groupconv.design.recommend` - :func:`recommend`, the number of groups of every
  grouped layer of a catalogue network that minimises a predicted cost (a platform's
  time, a fitted model's energy, or any per-layer pricing function).
"""

from .recommend import Recommendation, catalogue_layers, layer_pricer, recommend
from .search import SearchResult, brute_force, search

__all__ = ["Recommendation", "SearchResult", "brute_force", "catalogue_layers", "layer_pricer", "recommend", "search"]
