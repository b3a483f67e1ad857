"""Time, energy and peak memory of real torch convolutions, per frame.

* :mod:`~groupconv.measure.energy` - energy sources (Zeus, nvidia-smi logs, none).
* :mod:`~groupconv.measure.protocol` - warm-up, timed windows, trials, peak memory.
* :mod:`~groupconv.measure.workloads` - conv layers (dense, GC, depthwise, BGC) and
  catalogue networks as measurable workloads.
* :mod:`~groupconv.measure.campaign` - many workloads into a resumable runs CSV.
* :mod:`~groupconv.measure.schema` - the runs CSV: columns, writer, :func:`read_runs`.

Importing this package does not import torch or zeus; the functions that need them
import them when called. See ``docs/measure.md``.
"""

from .campaign import CampaignReport, run_campaign
from .energy import (
    ENERGY_SOURCES,
    EnergySource,
    EnergySourceError,
    NoEnergySource,
    NvidiaSmiLogSource,
    ZeusSource,
    available_source,
    integrate_power,
    measure_idle_power,
    read_power_log,
)
from .protocol import CLOCKS, MODES, FastestWindow, Protocol, Result, fastest_window, measure
from .schema import COLUMN_NAMES, COLUMNS, KEY_COLUMNS, RunWriter, read_runs
from .workloads import (
    LayerWorkload,
    NetworkWorkload,
    layer_workloads,
    network_workloads,
    paper_workloads,
)

__all__ = [
    "CampaignReport",
    "run_campaign",
    "ENERGY_SOURCES",
    "EnergySource",
    "EnergySourceError",
    "NoEnergySource",
    "NvidiaSmiLogSource",
    "ZeusSource",
    "available_source",
    "integrate_power",
    "measure_idle_power",
    "read_power_log",
    "CLOCKS",
    "FastestWindow",
    "MODES",
    "Protocol",
    "fastest_window",
    "Result",
    "measure",
    "COLUMNS",
    "COLUMN_NAMES",
    "KEY_COLUMNS",
    "RunWriter",
    "read_runs",
    "LayerWorkload",
    "NetworkWorkload",
    "layer_workloads",
    "network_workloads",
    "paper_workloads",
]
