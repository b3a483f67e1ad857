"""Designing networks: the recommended grouping and the design of any trained network.

The exact optimisers they use (the knapsack search, the Pareto front) live in
:mod:`groupconv.optimize`, below ``fit`` and ``design``.

* :mod:`~groupconv.design.recommend` - :func:`recommend`, the number of groups of every
  grouped layer of a catalogue network that minimises a predicted cost (a platform's
  time, a fitted model's energy, or any per-layer pricing function).
* :mod:`~groupconv.design.grouping` - :func:`recommend_grouping` (deprecated), the E2GC
  table view of :func:`recommend` with the Eq. 2 columns.
* :mod:`~groupconv.design.options` - :func:`option_table`: every (dense, GC, BGC; N) of
  every eligible conv of a torch model, priced on a platform and measured on the layer's
  own activations (torch inside the functions).
* :mod:`~groupconv.design.design` - :func:`design` (the front, the paper's constant plans,
  the plan a budget chooses), :func:`convert_plan`, :func:`export_plan`.
"""

from .design import Design, Plan, constant_plans, convert_plan, design, export_plan, plan_from_table
from .options import DESIGN_METHODS, LayerOption, OptionTable, eligible_convs, load_data, option_table
from .grouping import GroupingRecommendation, recommend_grouping
from .recommend import Recommendation, as_pricer, catalogue_layers, recommend

__all__ = [
    "DESIGN_METHODS",
    "Design",
    "GroupingRecommendation",
    "LayerOption",
    "OptionTable",
    "Plan",
    "Recommendation",
    "as_pricer",
    "catalogue_layers",
    "constant_plans",
    "convert_plan",
    "design",
    "eligible_convs",
    "export_plan",
    "load_data",
    "option_table",
    "plan_from_table",
    "recommend",
    "recommend_grouping",
]
