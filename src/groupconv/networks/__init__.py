"""MobileNet-V1 and ResNeXt-50 in E2GC/FgGC variants, and counting any torch model.

* :func:`build_network` - a variant as a list of :class:`~groupconv.cost.ConvLayer`
  (torch-free), whose totals reproduce the E2GC paper's Tables III and IV
  (:func:`compare_with_paper`).
* :func:`build_module` - the same variant as a real ``torch.nn.Module``.
* :func:`count_module` - every aten op of any torch model (MACs, bytes, module, shapes),
  traced through torch's dispatcher, by default on the ``meta`` device.
* :func:`resolve_model` - a model from ``FILE.py:FACTORY``, ``package.module:factory``
  or a catalogue name; :func:`load_user_module` - the user's file or module it loads.

torch is imported only inside the functions that need it.
"""

from .catalogue import (
    ARCHITECTURES,
    BASELINES,
    IMAGE_SIZE,
    NUM_CLASSES,
    PAPER_GROUPS,
    VARIANTS,
    Network,
    build_network,
    compare_with_paper,
    groups_for,
    paper_networks,
)
from .count import ModelCount, OpCount, count_module
from .resolve import load_user_module, resolve_model
from .torch_models import build_module, input_shape

__all__ = [
    "ARCHITECTURES",
    "BASELINES",
    "IMAGE_SIZE",
    "NUM_CLASSES",
    "PAPER_GROUPS",
    "VARIANTS",
    "ModelCount",
    "Network",
    "OpCount",
    "build_module",
    "build_network",
    "compare_with_paper",
    "count_module",
    "groups_for",
    "input_shape",
    "load_user_module",
    "paper_networks",
    "resolve_model",
]
