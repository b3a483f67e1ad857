"""groupconv: cost, energy and approximability of group convolution.

Packages, one concept each, in import order (each imports only those listed before it):

1. :mod:`groupconv.errors`, :mod:`groupconv._validate` - the one error type and the input
   checks that name the value (with ``_memory`` and ``paper_tables``, the embedded data).
2. :mod:`groupconv.cost` - MACs, parameters, activations, arithmetic intensity (E2GC
   Tables I/II), the optimum group size model (E2GC Eq. 1-4) and the BGC cost table,
   symbolically (sympy) and numerically (numpy), on plain shapes.
3. :mod:`groupconv.optimize` - torch-free optimisers over one choice per layer: the
   knapsack search under budgets and the Pareto front.
4. :mod:`groupconv.networks` - the catalogue (MobileNet-V1, ResNeXt-50 in E2GC/FgGC
   variants), the zoo, the dispatch tracer and counting any torch model;
   :mod:`groupconv.nn` - the torch modules of GC and BGC (the one builder of them).
5. :mod:`groupconv.approx` - approximability of GC and BGC (BGC paper);
   :mod:`groupconv.measure` - time, energy and memory of real torch convolutions.
6. :mod:`groupconv.fit` - laws fitted to network totals (the paper's tables, runs files);
   :mod:`groupconv.platform` - a platform calibrated on this machine, predicting any
   network (platform may use fit's numerics; fit never imports platform).
7. :mod:`groupconv.design` - the recommended grouping and the design of a trained network.
8. :mod:`groupconv.figures` - every figure.
9. :mod:`groupconv.cli` - the ``groupconv`` command, a thin adapter over the library.

The order is held by import-linter's contracts in ``pyproject.toml`` (run by
``tests/test_imports.py``): a lower package never imports a higher one, ``cost`` and
``optimize`` import neither torch nor zeus, no package imports another's private names,
and the modules of one package import each other without a cycle.

torch and zeus are optional and imported lazily where used.
"""

from .cost import ConvLayer
from .errors import GroupConvError

__version__ = "0.1.0"

__all__ = ["ConvLayer", "GroupConvError", "__version__"]
