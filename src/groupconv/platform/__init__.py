"""A platform: measured once, it predicts what any network costs on it.

* :mod:`~groupconv.platform.platform` - the frozen :class:`Platform` value and its
  versioned JSON file (``save``/``load``).
* :mod:`~groupconv.platform.correction` - :class:`NetworkCorrection`, the per-group
  factors learned from whole networks, read by :class:`Platform` at prediction time.
* :mod:`~groupconv.platform.models` - per-kernel-type models of the time (and energy) of
  one operator call, the roofline, torch's CPU conv-kernel selection rule.
* :mod:`~groupconv.platform.specs` - what a calibration measures (roofline, the designed
  operator set, synthetic networks), as plain specs; no torch.
* :mod:`~groupconv.platform.modules` - the torch modules a spec builds, and the synthetic
  networks.
* :mod:`~groupconv.platform.runs` - the calibration runs CSV (columns, path, writer).
* :mod:`~groupconv.platform.fitting` - :func:`fit_platform`: kernel models, network
  correction and the E2GC law fitted from the rows.
* :mod:`~groupconv.platform.calibrate` - :func:`calibrate`: measures the specs into the
  runs CSV and fits (orchestration only).
* :mod:`~groupconv.platform.predict` - :func:`predict`: a traced model priced per operator.

Imports go one way: ``correction``, ``models`` <- ``platform`` <- ``fitting`` <-
``calibrate``; ``specs`` <- ``modules``; ``predict`` reads a ``Platform`` only.

Importing this package imports neither torch nor zeus. See ``docs/platform.md``.
"""

from .calibrate import DEFAULT_BUDGET_S, calibrate
from .correction import CORRECTION_GROUPS, NetworkCorrection, correction_group
from .fitting import fit_platform
from .models import KERNELS, KernelModel, OpFeatures, Roofline, cpu_conv_uses_mkldnn, kernel_of
from .platform import SCHEMA_VERSION, Platform, UnmeasuredKernelWarning
from .predict import OpPrediction, Prediction, predict
from .runs import RUN_COLUMNS, runs_path_for

__all__ = [
    "CORRECTION_GROUPS",
    "DEFAULT_BUDGET_S",
    "NetworkCorrection",
    "RUN_COLUMNS",
    "correction_group",
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
