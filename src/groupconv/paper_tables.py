"""The E2GC paper's Tables III and IV as package data.

The CSV (``groupconv/data/e2gc_tables.csv``) is a transcription; its header comment
gives the provenance and units. Note the paper prints ResNeXt-50 MACs with 3 significant
digits (x 1e9), so those values carry a rounding error of up to ~0.1%.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_e2gc_tables", "load_epf", "PLATFORMS", "BATCHES"]

#: GPUs of the paper's energy measurements.
PLATFORMS: tuple[str, ...] = ("P100", "P4000")
#: Batch sizes of the paper's energy measurements.
BATCHES: tuple[int, ...] = (1, 4, 16)


def load_e2gc_tables() -> pd.DataFrame:
    """Tables III and IV, one row per network variant (wide: one EPF column per GPU and batch)."""
    path = resources.files("groupconv") / "data" / "e2gc_tables.csv"
    with resources.as_file(path) as csv_path:
        return pd.read_csv(csv_path, comment="#")


def load_epf() -> pd.DataFrame:
    """The EPF columns in long form: network, variant, group, platform, batch, epf_J.

    ``epf_J`` is in joules (the paper prints millijoules).
    """
    wide = load_e2gc_tables()
    rows = []
    for _, row in wide.iterrows():
        for platform in PLATFORMS:
            for batch in BATCHES:
                rows.append(
                    {
                        "table": row["table"],
                        "network": row["network"],
                        "variant": row["variant"],
                        "group": int(row["group"]),
                        "platform": platform,
                        "batch": batch,
                        "epf_J": row[f"epf_{platform}_B{batch}_mJ"] / 1000.0,
                    }
                )
    return pd.DataFrame(rows)
