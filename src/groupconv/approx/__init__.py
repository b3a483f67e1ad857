"""Approximability of group convolution (GC) and balanced group convolution (BGC).

Implements the BGC paper (Lee, Park, Lee; arXiv 2310.12461): the structured
approximations (Eq. 2.3, 3.1), the measure E / Rel.E (Eq. 5.1, 5.3) with an exact
least-squares inner minimum, the bounds of Theorems 3.5 and 3.6 and the exact expected
values, and the approximability of a user's own torch Conv1d/Conv2d layer.

Modules: :mod:`.structures` (what each output group may see), :mod:`.data` (sampling,
padding, patches, the Gram matrix), :mod:`.solvers` (fast Gram solver and plain
reference), :mod:`.measure` (E, Rel.E, sweeps), :mod:`.theory` (bounds, expectations,
slopes), :mod:`.torch_layers` (real layers), :mod:`.network` (whole models:
``approximability_of_model``, ``convert_model``), :mod:`.sources` (tensors, iterables,
DataLoaders, shard directories), :mod:`.stats` (the per-layer statistics, streamed batch
by batch) and :mod:`.distributed` (their sum over torch.distributed ranks); these import
torch lazily and are not imported here.
"""

from .data import DataGram, gram_from_data, patches, sample_data, sample_weights
from .measure import ApproxConfig, ApproxResult, ApproxSweep, approximability
from .solvers import GramSolver, StructuredFit, reference_errors
from .structures import (
    METHODS,
    BGCStructure,
    DenseStructure,
    FeatureLayout,
    GCStructure,
    PartitionedGCStructure,
    Structure,
    structure,
)
from .theory import ExpectedE, bound_iid, bound_thm, expected_E, fitted_slope, rel_E_population

__all__ = [
    "ApproxConfig",
    "ApproxResult",
    "ApproxSweep",
    "approximability",
    "GramSolver",
    "StructuredFit",
    "reference_errors",
    "DataGram",
    "gram_from_data",
    "patches",
    "sample_data",
    "sample_weights",
    "METHODS",
    "Structure",
    "FeatureLayout",
    "GCStructure",
    "BGCStructure",
    "PartitionedGCStructure",
    "DenseStructure",
    "structure",
    "ExpectedE",
    "bound_thm",
    "bound_iid",
    "expected_E",
    "fitted_slope",
    "rel_E_population",
]
