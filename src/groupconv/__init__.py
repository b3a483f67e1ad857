"""groupconv: cost, energy and approximability of group convolution.

Modules, one concept each:

* :mod:`groupconv.cost` - MACs, parameters, activations, arithmetic intensity (E2GC
  Tables I/II), the optimum group size model (E2GC Eq. 1-4) and the BGC cost table,
  symbolically (sympy) and numerically (numpy).
* :mod:`groupconv.networks` - MobileNet-V1 and ResNeXt-50 in E2GC/FgGC variants, as
  layer lists and as torch modules; counting any torch model.
* :mod:`groupconv.approx` - approximability of GC and BGC (BGC paper).
* :mod:`groupconv.measure` - time, energy and memory of real torch convolutions.
* :mod:`groupconv.fit` - platform constants and energy models fitted to measurements.
* :mod:`groupconv.figures` - the papers' theory figures.

torch and zeus are optional and imported lazily where used.
"""

from .cost import ConvLayer
from .errors import GroupConvError

__version__ = "0.1.0"

__all__ = ["ConvLayer", "GroupConvError", "__version__"]
