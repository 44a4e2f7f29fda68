"""Figures for runs and studies (matplotlib, no display needed)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

MODE_STYLE = {
    "stateful": {"color": "tab:green", "label": "stateful (state carried)"},
    "chunk": {"color": "tab:blue", "label": "chunk (reset every T tokens)"},
    "stateless": {"color": "tab:red", "label": "stateless (reset every token)"},
}


def loss_by_position_figure(curves: dict[str, list[float]], title: str = "") -> Figure:
    """Validation loss at each position of a chunk, one line per mode; each curve has T
    positions and the mode's mean last (drawn as a dashed line)."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for mode, values in curves.items():
        style = MODE_STYLE.get(mode, {"label": mode})
        *by_position, mean = values
        # The stateful line is drawn on top: it is the one the others are compared with.
        z = 3 if mode == "stateful" else 2
        ax.plot(range(len(by_position)), by_position, lw=1.5, zorder=z, **style)
        ax.axhline(mean, ls="--", lw=0.8, color=style.get("color"))
    ax.set_xlabel("position in the chunk (tokens since a chunk-mode reset)")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(title or "Loss by position: what the state remembers")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def bar_figure(rows: dict[str, dict[str, float]], ylabel: str, title: str) -> Figure:
    """Grouped bars: one group per row (a run), one bar per mode."""
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows)), 4), dpi=110)
    modes = [m for m in MODE_STYLE if any(m in r for r in rows.values())]
    width = 0.8 / max(1, len(modes))
    for i, mode in enumerate(modes):
        xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(rows))]
        ys = [r.get(mode, math.nan) for r in rows.values()]
        ax.bar(xs, ys, width, color=MODE_STYLE[mode]["color"], label=MODE_STYLE[mode]["label"])
    ax.set_xticks(range(len(rows)), list(rows), rotation=15, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def save(fig: Figure, path) -> None:
    """Write ``fig`` as PNG and release it."""
    fig.savefig(path)
    plt.close(fig)
