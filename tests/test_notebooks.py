"""Execute every notebook in notebooks/ so that none can go stale, and check that each one
is committed executed (outputs present, no progress-bar noise; see tools/execute_notebooks.py).

A cell that raises fails the test. Notebooks run with notebooks/ as the working
directory and with src/ on PYTHONPATH, so they use this checkout's groupconv.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "tools" / "execute_notebooks.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    src = str(ROOT / "src")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend captures figures
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    errors = [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    assert not _drawing_cells_without_image(notebook), "a cell that draws a figure shows no image"


#: a cell that draws: a pyplot call, one of groupconv's *_figure functions, subplots or plot
_DRAWS = re.compile(r"\bplt\.(?!rc)\w+\(|\b\w+_figure\(|\.subplots\(|\.plot\(")


def _drawing_cells_without_image(notebook) -> list[int]:
    """Indices of code cells that draw a figure but hold no image output."""
    return [
        i for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and _DRAWS.search(cell.source)
        and not any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_executed_and_clean(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    hint = f"run: python tools/execute_notebooks.py {path.relative_to(ROOT)}"
    assert code and all(cell.execution_count is not None for cell in code), hint
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), hint
    assert any(cell.outputs for cell in code), hint
    outputs = [out for cell in code for out in cell.outputs]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    assert not [out for out in outputs if tool.is_progress_noise(out)], hint
    assert not _drawing_cells_without_image(notebook), f"a cell draws a figure but shows none; {hint}"
    text = " ".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert not re.search(r"\bissues?\b", text, flags=re.IGNORECASE)


def test_progress_noise_is_recognised_and_dropped():
    nbformat = pytest.importorskip("nbformat")
    bar = nbformat.v4.new_output("stream", name="stderr", text="measure:  40%|####      | 2/5 [00:01<00:02,  1.50it/s]")
    warning = nbformat.v4.new_output("stream", name="stderr", text="UserWarning: something real\n")
    printed = nbformat.v4.new_output("stream", name="stdout", text="100%|done| 5/5 printed on purpose\n")
    widget = nbformat.v4.new_output(
        "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "bar"}
    )
    table = nbformat.v4.new_output("execute_result", data={"text/plain": "a table"}, execution_count=1)
    assert [tool.is_progress_noise(o) for o in (bar, warning, printed, widget, table)] == [
        True, False, False, True, False,
    ]
    cell = nbformat.v4.new_code_cell("x", outputs=[bar, warning, table, widget])
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00"}
    notebook = nbformat.v4.new_notebook(cells=[cell])
    tool.clean(notebook)
    assert cell.outputs == [warning, table] and "execution" not in cell.metadata
