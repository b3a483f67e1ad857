"""The network correction: whole networks against the sum of their per-op predictions.

A network is not the sum of its operators timed alone (warm inputs, cold weights, the
ops outside leaf modules, dispatch overhead). Calibration times small synthetic
networks whole and learns, per :data:`CORRECTION_GROUPS` group of kernel types, a factor
that multiplies the summed per-op predictions (:mod:`~groupconv.platform.fitting`).
:class:`NetworkCorrection` is that value: what :class:`~groupconv.platform.Platform`
reads at prediction time, and what the ``network_correction`` object of the platform
JSON holds (:meth:`NetworkCorrection.as_dict` / :meth:`NetworkCorrection.from_dict`
write and read it unchanged).

Imports neither torch nor zeus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

__all__ = ["CORRECTION_GROUPS", "FACTOR_RANGE", "NetworkCorrection", "correction_group"]

#: The range a network-correction factor (measured / predicted) may take: the platform
#: file's JSON Schema (``$defs.factor``) refuses a file outside it, and the fit keeps its
#: factors inside it (a factor beyond it means the per-op models are off by more than
#: 50x, as after a calibration of a few seconds, and the file's note says it was clipped).
FACTOR_RANGE: tuple[float, float] = (0.02, 50.0)

#: Groups of kernel types that share one network-correction factor.
CORRECTION_GROUPS: tuple[str, ...] = ("conv", "matmul", "attention", "rnn", "norm", "memory")


def correction_group(kernel: str) -> str:
    """The network-correction group of a kernel type (see :data:`CORRECTION_GROUPS`).

    A phase prefix (``"backward:conv_slow"``) is ignored: an op is corrected with its
    kernel's group.
    """
    parts = kernel.split(":")
    base = parts[1] if parts[0] in ("forward", "backward") and len(parts) > 1 else parts[0]
    if base.startswith("conv"):
        return "conv"
    if base == "matmul":
        return "matmul"
    if base in ("attention", "mha", "encoder_layer"):
        return "attention"
    if base == "rnn":
        return "rnn"
    if base == "norm":
        return "norm"
    return "memory"


@dataclass(frozen=True)
class NetworkCorrection:
    """Measured / predicted time of whole synthetic networks (see the module docstring).

    Every field is optional: a platform fitted before any network was measured has none
    (no correction, a factor of 1). :meth:`as_dict` writes only the fields that are set,
    in this order, so the JSON of a platform is unchanged by reading and writing it.

    Parameters
    ----------
    time_factor : float, optional
        Geometric mean of measured / summed per-op predicted time over the networks;
        the factor of a group the networks did not exercise.
    factors : mapping of str -> float, optional
        One factor per :data:`CORRECTION_GROUPS` group.
    n_networks : int, optional
        Networks the correction was learned from.
    mape_uncorrected, mape_single_factor, mape_corrected, loo_mape_corrected : float, optional
        Errors on those networks: no correction, ``time_factor`` alone, the per-group
        factors, and the per-group factors learned leaving each network out.
    networks : tuple of dict, optional
        Per network: ``key``, ``measured_time_s``, ``predicted_time_s``, ``uncorrected_time_s``.
    note : str, optional
        How the correction was learned.
    energy_factor : float, optional
        Measured / predicted energy (only with an energy meter).
    """

    time_factor: float | None = None
    factors: Mapping[str, float] | None = None
    n_networks: int | None = None
    mape_uncorrected: float | None = None
    mape_single_factor: float | None = None
    mape_corrected: float | None = None
    loo_mape_corrected: float | None = None
    networks: tuple[Mapping[str, object], ...] | None = None
    note: str | None = None
    energy_factor: float | None = None

    def time_factor_of(self, kernel: str) -> float:
        """The factor that multiplies a per-op time prediction of this kernel type."""
        overall = 1.0 if self.time_factor is None else float(self.time_factor)
        return float((self.factors or {}).get(correction_group(kernel), overall))

    @property
    def energy_factor_or_one(self) -> float:
        """The factor of a per-op energy prediction (1 without one)."""
        return 1.0 if self.energy_factor is None else float(self.energy_factor)

    def as_dict(self) -> dict[str, object]:
        """The JSON object: the fields that are set, in field order."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "factors":
                value = dict(value)
            elif f.name == "networks":
                value = [dict(n) for n in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, object] | None) -> NetworkCorrection:
        """Read the JSON object (unknown keys are an error: a file of another layout)."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"network_correction has unknown key(s) {', '.join(unknown)}")

        def num(name: str, kind=float):
            return None if d.get(name) is None else kind(d[name])

        return cls(
            time_factor=num("time_factor"),
            factors=None if d.get("factors") is None else {str(k): float(v) for k, v in dict(d["factors"]).items()},
            n_networks=num("n_networks", int),
            mape_uncorrected=num("mape_uncorrected"),
            mape_single_factor=num("mape_single_factor"),
            mape_corrected=num("mape_corrected"),
            loo_mape_corrected=num("loo_mape_corrected"),
            networks=None if d.get("networks") is None else tuple(dict(n) for n in d["networks"]),
            note=None if d.get("note") is None else str(d["note"]),
            energy_factor=num("energy_factor"),
        )

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))
