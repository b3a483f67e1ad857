"""Every registered figure: one paper column wide, fonts >= 7 pt, PNG + SVG (text as text) + PDF."""

from __future__ import annotations

import struct

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from groupconv.figures import registry, save_figure
from groupconv.figures._save import COLUMN_WIDTH_IN, MIN_FONT_PT, column_figure, paper_style
from groupconv.figures.bgc_approx import make_fig1, make_fig2

from groupconv.approx.measure import ApproxConfig

SMALL = ApproxConfig(in_channels=64, out_channels=64, data_samples=16, weight_samples=2)

#: The registry's figures, the BGC ones on a small sweep (same code, less arithmetic).
MAKERS = {**registry(), "bgc_fig1": lambda: make_fig1(SMALL), "bgc_fig2": lambda: make_fig2(SMALL)}


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_column_width_and_fonts(name, tmp_path):
    fig = MAKERS[name]()
    width, height = fig.get_size_inches()
    assert 3.3 <= width <= 3.5 and height <= 4.6, (width, height)
    texts = [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
    assert texts
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < MIN_FONT_PT]
    assert not small
    paths = save_figure(fig, tmp_path, name)
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"]
    # the saved PNG is the figure's own size at 300 dpi (no tight box that changes the width)
    assert _png_size(paths[0]) == (round(width * 300), round(height * 300))
    svg = paths[1].read_text()
    assert "<text" in svg  # svg.fonttype = none: text stays text
    assert paths[2].read_bytes()[:5] == b"%PDF-"


def test_saving_twice_gives_the_same_bytes(tmp_path):
    with paper_style():
        fig = column_figure(2.0)
        fig.add_subplot().plot([1, 2, 3], [3, 1, 2], label="a")
    first = [p.read_bytes() for p in save_figure(fig, tmp_path / "a", "f")]
    second = [p.read_bytes() for p in save_figure(fig, tmp_path / "b", "f")]
    assert first == second
    assert isinstance(fig, Figure) and fig.get_size_inches()[0] == COLUMN_WIDTH_IN
