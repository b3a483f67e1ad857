"""GC against BGC on a real trained network: scikit-learn's handwritten digits, on a CPU.

The BGC paper's real-data experiment (its Table 3) converts a pretrained ResNet-50 to GC
and BGC and transfer-learns it. This is the same experiment at a size a 2-core CPU runs
in minutes, with no download: a small CNN trained on scikit-learn's 8 x 8 digits (1797
images that ship inside scikit-learn), its dense convs converted with
:func:`~groupconv.approx.network.convert_model` at several N, then

* the per-layer approximability on the real activations (:func:`approximability_of_model`),
* the test error right after conversion and after a short fine-tune,

for GC and BGC at every N. Because BGC with N groups has exactly the parameters and MACs
of GC with N/2 groups (``2 K m n / N``, BGC Table 1), the study reports both the paper's
comparison (BGC at N against GC at N: BGC costs twice as much) and the equal-cost one
(BGC at N against GC at N/2).

Everything is seeded; torch runs single-threaded. :class:`StudyConfig` holds the sizes
(:data:`QUICK` is the notebook's small variant). Needs the ``study`` extra
(``pip install -e ".[study]"``: torch and scikit-learn).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .. import _validate as v
from ..errors import GroupConvError
from .network import approximability_of_model, convert_model

__all__ = [
    "StudyConfig", "StudyResult", "QUICK", "load_digits", "digits_cnn", "train", "error_rate",
    "run_study", "study_figure",
]


@dataclass(frozen=True)
class StudyConfig:
    """Sizes and seeds of the digits study.

    Parameters
    ----------
    widths : tuple of int
        Output channels of the four 3 x 3 convs (the first sees 1 channel, so it stays
        dense; the other three are converted).
    groups : tuple of int
        The N values for GC; BGC uses those with N >= 4 (BGC with N = 2 has the dense
        conv's parameter count).
    seeds : tuple of int
        One trained network (and one train/test split) per seed.
    epochs, finetune_epochs : int
        Training and fine-tuning epochs (Adam, batch 64).
    lr, finetune_lr : float
    test_fraction : float
        Share of the 1797 images held out for testing.
    """

    widths: tuple[int, ...] = (32, 64, 64, 64)
    groups: tuple[int, ...] = (2, 4, 8, 16)
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 30
    finetune_epochs: int = 3
    lr: float = 2e-3
    finetune_lr: float = 5e-4
    test_fraction: float = 0.33

    def __post_init__(self) -> None:
        if len(self.widths) != 4:
            raise GroupConvError(f"widths must be 4 channel counts, got {self.widths!r}")
        for w in self.widths:
            v.positive_int("width", w)
        for g in self.groups:
            v.positive_int("groups", g)
        v.positive_int("epochs", self.epochs)
        v.nonnegative_int("finetune epochs", self.finetune_epochs)
        v.in_interval("test fraction", self.test_fraction, 0, 1)
        v.finite_positive("lr", self.lr)
        v.finite_positive("finetune lr", self.finetune_lr)

    def variants(self) -> list[tuple[str, int]]:
        """The (method, N) conversions: GC at every N, BGC at every N >= 4."""
        return [("gc", g) for g in self.groups] + [("bgc", g) for g in self.groups if g >= 4]


#: The notebook's small variant (a minute or less on 2 cores).
QUICK = StudyConfig(widths=(16, 32, 32, 32), groups=(2, 4, 8), seeds=(0,), epochs=12,
                    finetune_epochs=2)


@dataclass(frozen=True)
class StudyResult:
    """What :func:`run_study` found.

    Attributes
    ----------
    config : StudyConfig
    models : tuple of dict
        One row per (seed, method, N), plus ``method="dense"`` rows: ``test_error`` right
        after conversion, ``test_error_finetuned`` after the fine-tune (the dense model
        is fine-tuned the same way, as the control), ``params`` and ``macs`` of the
        converted convs (the first, dense conv excluded), and ``mean_rel_output_E``.
    layers : tuple of dict
        Per (seed, layer, method, N): ``E``, ``rel_E``, ``rel_output_E`` on the real
        training-set activations, ``params``, ``macs``, and the white-data value of
        ``rel_output_E`` (``1 - 1/N`` for GC, ``1 - 2/N`` for BGC).
    time_s : float
        Wall time of the whole study.
    """

    config: StudyConfig
    models: tuple[dict, ...]
    layers: tuple[dict, ...]
    time_s: float

    @classmethod
    def from_dict(cls, data: dict) -> StudyResult:
        """The inverse of :meth:`as_dict` (e.g. from ``benchmarks/real_data/study.json``)."""
        cfg = {k: tuple(x) if isinstance(x, list) else x for k, x in data["config"].items()}
        return cls(config=StudyConfig(**cfg), models=tuple(data["models"]),
                   layers=tuple(data["layers"]), time_s=float(data["time_s"]))

    def as_dict(self) -> dict:
        """JSON-ready."""
        return {"config": asdict(self.config), "models": list(self.models),
                "layers": list(self.layers), "time_s": self.time_s}

    def models_frame(self):
        """The :attr:`models` rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(list(self.models))

    def layers_frame(self):
        """The :attr:`layers` rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(list(self.layers))

    def comparison(self):
        """BGC at N against GC at N (paper) and GC at N/2 (equal cost), averaged over seeds.

        One row per BGC N: mean test errors (after conversion and after fine-tuning) of
        BGC at N, GC at N and GC at N/2, and mean ``rel_output_E`` over the converted
        layers, with the relative change ``(BGC - GC) / GC``.
        """
        import pandas as pd

        frame = self.models_frame()
        mean = frame.groupby(["method", "groups"]).mean(numeric_only=True)
        rows = []
        for (method, g), row in mean.iterrows():
            if method != "bgc":
                continue
            out = {"groups": g, "bgc_params": row.params}
            for label, ref in (("gc_same_N", ("gc", g)), ("gc_half_N", ("gc", g // 2))):
                if ref not in mean.index:
                    continue
                other = mean.loc[ref]
                out[f"{label}_params"] = other.params
                for col in ("test_error", "test_error_finetuned", "mean_rel_output_E"):
                    out[f"bgc_{col}"] = row[col]
                    out[f"{label}_{col}"] = other[col]
                    out[f"{label}_{col}_change"] = (row[col] - other[col]) / other[col] if other[col] else float("nan")
            rows.append(out)
        return pd.DataFrame(rows)


def load_digits(seed: int, test_fraction: float = 0.33):
    """scikit-learn's digits as float32 tensors ``(S, 1, 8, 8)`` in [0, 1], split by ``seed``."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError:  # pragma: no cover - depends on the environment
        raise GroupConvError(
            "the digits study needs scikit-learn: pip install -e '.[study]'"
        ) from None
    import torch

    bunch = _load()
    x = torch.tensor(bunch.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def digits_cnn(widths: Sequence[int] = (32, 64, 64, 64)):
    """Four 3 x 3 conv-BN-ReLU blocks (a 2 x 2 max-pool after the second), average pool, linear."""
    from torch import nn

    c1, c2, c3, c4 = widths
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, 3, padding=1, bias=False), nn.BatchNorm2d(c3), nn.ReLU(),
        nn.Conv2d(c3, c4, 3, padding=1, bias=False), nn.BatchNorm2d(c4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c4, 10),
    )


def train(model, x, y, epochs: int, lr: float, seed: int) -> None:
    """Adam on the cross-entropy, batches of 64 in a seeded order; leaves the model in eval mode."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), 64):
            idx = order[start : start + 64]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()


def error_rate(model, x, y) -> float:
    """Fraction of ``x`` the model (in eval mode) classifies wrongly."""
    import torch

    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) != y).float().mean())


def _white_rel_output(method: str, groups: int) -> float:
    """Population fraction of the output lost under white data and He weights: n Rel.E."""
    return 1 - 1 / groups if method == "gc" else max(1 - 2 / groups, 0.0)


def run_study(config: StudyConfig = StudyConfig(), progress: bool = False) -> StudyResult:
    """Train, convert, measure and fine-tune, for every seed and (method, N) of ``config``."""
    import copy

    import torch

    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    models, layers = [], []
    variants = config.variants()
    steps = [(seed, var) for seed in config.seeds for var in [("dense", 1), *variants]]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(steps), desc="digits study", unit="model")
    try:
        for seed in config.seeds:
            torch.manual_seed(seed)
            x_tr, y_tr, x_te, y_te = load_digits(seed, config.test_fraction)
            base = digits_cnn(config.widths)
            train(base, x_tr, y_tr, config.epochs, config.lr, seed)
            methods = sorted({m for m, _ in variants})
            approx = approximability_of_model(
                base, x_tr, methods=methods, groups=sorted({g for _, g in variants})
            )
            converted = list(dict.fromkeys(r["layer"] for r in approx.rows))
            for r in approx.rows:
                if (r["method"], r["groups"]) not in variants:
                    continue
                layers.append(dict(
                    seed=seed, layer=r["layer"], method=r["method"], groups=r["groups"],
                    in_channels=r["in_channels"], out_channels=r["out_channels"],
                    E=r["E"], rel_E=r["rel_E"], rel_output_E=r["rel_output_E"],
                    white_rel_output_E=_white_rel_output(r["method"], r["groups"]),
                    params=r["params"], macs=r["macs"],
                ))
            dense_rows = [r for r in approx.rows if r["method"] == "gc" and r["groups"] == config.groups[0]]
            for method, g in [("dense", 1), *variants]:
                if method == "dense":
                    model = copy.deepcopy(base)
                    params = sum(r["params_dense"] for r in dense_rows)
                    macs = sum(r["macs_dense"] for r in dense_rows)
                    mean_rel = 0.0
                else:
                    model, report = convert_model(base, x_tr, method=method, groups=g,
                                                  layers=converted)
                    params, macs = int(report.params_after.sum()), int(report.macs_after.sum())
                    mean_rel = float(report.rel_output_E.mean())
                err = error_rate(model, x_te, y_te)
                train(model, x_tr, y_tr, config.finetune_epochs, config.finetune_lr, seed + 1000)
                models.append(dict(
                    seed=seed, method=method, groups=g, params=params, macs=macs,
                    mean_rel_output_E=mean_rel, test_error=err,
                    test_error_finetuned=error_rate(model, x_te, y_te),
                    train_size=int(len(y_tr)), test_size=int(len(y_te)),
                ))
                if bar is not None:
                    bar.update()
    finally:
        torch.set_num_threads(threads)
        if bar is not None:
            bar.close()
    return StudyResult(config=config, models=tuple(models), layers=tuple(layers),
                       time_s=time.perf_counter() - start)


def study_figure(result):
    """Two panels at column width: per-layer loss of output energy, and test error vs parameters."""
    from matplotlib.figure import Figure

    layers = result.layers_frame()
    models = result.models_frame()
    fig = Figure(figsize=(3.4, 5.8), layout="constrained")
    ax1, ax2 = fig.subplots(2, 1)
    style = {"gc": dict(color="tab:blue", marker="o", label="GC"),
             "bgc": dict(color="tab:red", marker="s", label="BGC")}
    # (a) rel_output_E per converted layer (mean over seeds) against the parameters kept
    total_dense = float(models[models.method == "dense"].params.iloc[0])
    dashes = ["-", "--", ":", "-."]
    for i, layer in enumerate(dict.fromkeys(layers.layer)):
        for method in ("gc", "bgc"):
            sub = layers[(layers.layer == layer) & (layers.method == method)].groupby("groups")
            mean = sub.rel_output_E.mean()
            per = 1 if method == "gc" else 2
            frac = np.array([per / g for g in mean.index])
            st = dict(style[method])
            st["label"] = f"{st['label']}, layer {layer}"
            ax1.plot(frac, mean, linestyle=dashes[i % 4], markersize=3, linewidth=0.9, **st)
    f = np.geomspace(1 / 20, 0.6, 50)
    ax1.plot(f, 1 - f, color="black", linestyle=":", linewidth=0.8, label="white data: 1 - f")
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("conv parameters kept f (GC: 1/N, BGC: 2/N)", fontsize=7)
    ax1.set_ylabel("output energy lost\n(real activations)", fontsize=7)
    ax1.set_title("(a) least-squares fit per layer, mean of seeds", fontsize=7)
    ax1.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    # (b) test error after conversion + short fine-tune against parameters kept
    for method in ("gc", "bgc"):
        sub = models[models.method == method].groupby("groups")
        mean, std = sub.test_error_finetuned.mean() * 100, sub.test_error_finetuned.std() * 100
        frac = sub.params.mean() / total_dense
        ax2.errorbar(frac, mean, yerr=std, capsize=2, markersize=4, linewidth=1, **style[method])
        conv = sub.test_error.mean() * 100
        ax2.plot(frac, conv, linestyle="none", marker=style[method]["marker"], markersize=3,
                 fillstyle="none", color=style[method]["color"])
    base = models[models.method == "dense"].test_error_finetuned.mean() * 100
    ax2.axhline(base, color="black", linewidth=0.8, label="dense")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("conv parameters kept (fraction of dense)", fontsize=7)
    ax2.set_ylabel("test error (%)", fontsize=7)
    ax2.set_title("(b) filled: after fine-tune; open: right after conversion", fontsize=7)
    ax2.legend(fontsize=7)
    for ax in (ax1, ax2):
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    return fig
