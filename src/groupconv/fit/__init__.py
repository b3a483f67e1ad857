"""Platform constants and energy models fitted to measurements (E2GC paper, issue #5).

* :mod:`~groupconv.fit.data` - the paper's Tables III/IV joined with per-layer counts
  (:func:`paper_dataset`, :func:`paper_table_join`) and recorded runs (:func:`load_runs`).
* :mod:`~groupconv.fit.models` - energy models (``paper``, ``macs``, ``gpu``), registry
  :data:`MODELS`, :data:`BEST_MODEL`, :func:`alpha_from_traffic`.
* :mod:`~groupconv.fit.fitting` - :func:`fit_model` and :class:`FitResult`.
* :mod:`~groupconv.fit.validate` - :func:`validate_paper`, :func:`optimum_table`,
  :func:`simulate`, :func:`recovery`.
* :mod:`~groupconv.fit.predict` - direct minimisation of a fitted model, layer by layer:
  :func:`layer_energy_by_groups`, :func:`layer_optimum`.
* :mod:`~groupconv.fit.pricing` - a fit as a :class:`~groupconv.cost.LayerPricer`
  (:class:`FitResult` is one), so that :func:`groupconv.design.recommend` searches it.

Imports neither torch nor zeus.
"""

from .data import EnergyData, LayerArrays, Workload, bgc_layers, load_runs, paper_dataset, paper_table_join
from .fitting import FitResult, fit_model
from .models import (
    BEST_MODEL,
    MODELS,
    EnergyModel,
    GpuModel,
    MacsModel,
    PaperModel,
    Param,
    alpha_from_traffic,
    get_model,
)
from .predict import layer_energy_by_groups, layer_optimum
from .validate import LOO_TARGET, PaperValidation, optimum_table, recovery, simulate, validate_paper

__all__ = [
    "BEST_MODEL",
    "EnergyData",
    "EnergyModel",
    "FitResult",
    "GpuModel",
    "LOO_TARGET",
    "LayerArrays",
    "MODELS",
    "MacsModel",
    "PaperModel",
    "PaperValidation",
    "Param",
    "Workload",
    "alpha_from_traffic",
    "bgc_layers",
    "fit_model",
    "get_model",
    "layer_energy_by_groups",
    "layer_optimum",
    "load_runs",
    "optimum_table",
    "paper_dataset",
    "paper_table_join",
    "recovery",
    "simulate",
    "validate_paper",
]
