"""Figures a reader understands without the README: every line in the legend, units on
the axes, the caller's run, model and step in the title, and a readable size."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from gm.figures import bar_figure, loss_by_position_figure, mode_curves_figure, save
from gm.modes import BY_NAME, MODES

CURVES = {  # T = 4 positions, then the mode's mean
    "stateful": [1.2, 1.1, 1.1, 1.0, 1.1],
    "chunk": [3.0, 2.0, 1.5, 1.3, 1.95],
    "stateless": [3.0, 3.0, 3.0, 3.0, 3.0],
}
TITLE = "astra_alpha · outputs/astra_alpha/2026-05-01_12-00-00 · step 240 (epoch 2)"


def _pixels(fig: Figure, tmp_path: Path) -> tuple[int, int]:
    """Width and height of the saved PNG."""
    save(fig, tmp_path / "figure.png")
    height, width = plt.imread(tmp_path / "figure.png").shape[:2]
    return width, height


def test_loss_by_position_explains_every_line_and_is_readable(tmp_path: Path) -> None:
    fig = loss_by_position_figure(CURVES, TITLE)
    (ax,) = fig.axes
    legend = ax.get_legend()
    named = {t.get_text() for t in legend.get_texts()}
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 3  # one mean per mode
    for line in [*ax.lines]:  # solid and dashed: each has its legend entry
        assert line.get_label() in named, line.get_label()
    for mode in CURVES:
        assert any(mode in text and "mean" in text for text in named), mode
    assert "dashed" in legend.get_title().get_text()
    assert "nats per token" in ax.get_ylabel() and "position" in ax.get_xlabel()
    assert TITLE in ax.get_title().replace("\n", " ")
    width, height = _pixels(fig, tmp_path)
    assert width >= 1200 and height >= 700, (width, height)


def test_bar_figure_gives_each_bar_its_value_and_is_readable(tmp_path: Path) -> None:
    rows = {
        "astra_alpha (carried) · 2026-05-01_12-00-00": {"stateful": 1.75, "chunk": 1.9},
        "astra_alpha (carried) · 2026-05-01_13-00-00": {m: 2.0 + i for i, m in enumerate(MODES)},
    }
    fig = bar_figure(rows, "validation bits per character", "Bits per character")
    (ax,) = fig.axes
    values = {t.get_text() for t in ax.texts}
    assert {"1.750", "1.900", "2.000", "3.000", "4.000"} <= values
    assert "" in values  # the missing stateless value of the first run: no bar, no number
    legend = {t.get_text() for t in fig.legends[0].get_texts()}
    assert legend == {BY_NAME[m].label for m in MODES}
    width, height = _pixels(fig, tmp_path)
    assert width >= 1200 and height >= 700, (width, height)


def test_mode_curves_have_one_panel_per_mode_and_one_colour_per_run(tmp_path: Path) -> None:
    curves = {
        "0: lr=1": {"stateful": [(10, 2.5), (20, math.inf)], "chunk": [], "stateless": []},
        "1: lr=2": {m: [(10, 2.0 + i), (20, 1.5 + i)] for i, m in enumerate(MODES)},
    }
    fig = mode_curves_figure(curves, "Validation curves", "validation bits per character")
    assert [ax.get_title() for ax in fig.axes] == [BY_NAME[m].label for m in MODES]
    stateful, chunk, _ = fig.axes
    assert [line.get_label() for line in stateful.lines] == list(curves)
    assert [line.get_label() for line in chunk.lines] == ["1: lr=2"]
    assert stateful.lines[0].get_color() != stateful.lines[1].get_color()
    # A run keeps its colour in every panel, also where a run before it has no line.
    assert stateful.lines[1].get_color() == chunk.lines[0].get_color()
    assert math.isnan(stateful.lines[0].get_ydata()[1])  # a diverged validation is a gap
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(curves)
    assert all(ax.get_xlabel() == "optimizer step" for ax in fig.axes)
    width, height = _pixels(fig, tmp_path)
    assert width >= 1200 and height >= 700, (width, height)


def test_a_title_longer_than_the_figure_wraps_inside_it() -> None:
    """A sweep job's path is one long word: it is cut across lines rather than run past
    both edges of the figure."""
    job = (
        "outputs/multirun/2026-12-04_10-00-00/"
        + "3_"
        + ",".join(f"model.hidden_dim={n},optimizer.lr=0.00{n}" for n in range(1, 6))
    )
    fig = loss_by_position_figure(CURVES, f"astra_alpha · {job} · step 240")
    fig.canvas.draw()
    box = fig.axes[0].title.get_window_extent()
    width = fig.get_size_inches()[0] * fig.dpi
    assert box.x0 >= 0 and box.x1 <= width, (box.x0, box.x1, width)
    plt.close(fig)
