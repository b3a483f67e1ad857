"""A platform: measured once, it predicts what any network costs on it.

* :mod:`~groupconv.platform.platform` - the frozen :class:`Platform` value and its
  versioned JSON file (``save``/``load``).
* :mod:`~groupconv.platform.models` - per-kernel-type models of the time (and energy) of
  one operator call, the roofline, torch's CPU conv-kernel selection rule.
* :mod:`~groupconv.platform.calibrate` - :func:`calibrate`: roofline microbenchmarks, a
  designed operator set and synthetic networks, measured into a resumable runs CSV.
* :mod:`~groupconv.platform.predict` - :func:`predict`: a traced model priced per operator.

Importing this package imports neither torch nor zeus. See ``docs/platform.md``.
"""

from .calibrate import DEFAULT_BUDGET_S, calibrate, fit_platform, runs_path_for
from .models import KERNELS, KernelModel, OpFeatures, Roofline, cpu_conv_uses_mkldnn, kernel_of
from .platform import SCHEMA_VERSION, Platform, UnmeasuredKernelWarning
from .predict import OpPrediction, Prediction, predict

__all__ = [
    "DEFAULT_BUDGET_S",
    "KERNELS",
    "KernelModel",
    "OpFeatures",
    "OpPrediction",
    "Platform",
    "Prediction",
    "Roofline",
    "SCHEMA_VERSION",
    "UnmeasuredKernelWarning",
    "calibrate",
    "cpu_conv_uses_mkldnn",
    "fit_platform",
    "kernel_of",
    "predict",
    "runs_path_for",
]
