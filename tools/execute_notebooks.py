#!/usr/bin/env python3
"""Execute the notebooks in notebooks/ in place, so that they are committed with outputs.

Usage::

    python tools/execute_notebooks.py                 # every notebooks/*.ipynb
    python tools/execute_notebooks.py notebooks/03_measure.ipynb

Each notebook runs in a fresh kernel with notebooks/ as its working directory and this
checkout's src/ first on PYTHONPATH (the same conditions as tests/test_notebooks.py).
Before saving, the outputs are cleaned (:func:`clean`): progress bars are switched off
(``TQDM_DISABLE=1``) and any progress-bar text or widget left over is dropped, and no
timing metadata is recorded, so re-executing an unchanged notebook changes only what its
computations change.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

__all__ = ["is_progress_noise", "clean", "execute", "main"]

_WIDGET = "application/vnd.jupyter.widget-view+json"
# tqdm's bar: "name:  40%|####      | 2/5 [00:01<00:02,  1.50it/s]"
_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+|\r|\d+(\.\d+)?(it|s)/(s|it)\]")


def is_progress_noise(output: dict) -> bool:
    """Whether a cell output is a progress bar (tqdm text on stderr or a widget)."""
    if output.get("output_type") == "stream":
        return output.get("name") == "stderr" and bool(_BAR.search("".join(output.get("text", ""))))
    data = output.get("data", {})
    return _WIDGET in data and set(data) <= {_WIDGET, "text/plain"}


def clean(notebook) -> None:
    """Drop progress-bar outputs and per-cell execution timestamps, in place."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [out for out in cell.outputs if not is_progress_noise(out)]
        cell.metadata.pop("execution", None)
    notebook.metadata.pop("widgets", None)


def execute(path: Path, timeout: int = 600) -> None:
    """Execute ``path`` in place (fresh kernel), clean it and write it back."""
    import nbclient
    import nbformat

    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src")] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend shows the figures
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    clean(notebook)
    nbformat.write(notebook, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute notebooks in place (committed with outputs).")
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every notebooks/*.ipynb)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        print(f"executing {path}", file=sys.stderr)
        execute(path.resolve(), args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
