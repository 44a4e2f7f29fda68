"""Figures for runs and studies (matplotlib, no display needed).

Every figure is meant to be read without the README: its title says what is plotted
(and, where the caller gives it, which run, model and step), its axes say their units,
and every line, bar and colour has a legend entry. Sizes are 1200 pixels wide or more.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from os import PathLike

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from gm.atomic import write_bytes_atomic
from gm.modes import BY_NAME, MODES

DPI = 120  # with the sizes below: 1200 × 720 pixels and more
FONT = {"title": 14, "label": 12, "ticks": 11, "legend": 11, "values": 9}
MEAN_LINE = "--"  # a mode's mean over all positions of the chunk
RUN_COLORS = plt.get_cmap("tab10").colors  # one colour per run, the same in every panel


def _wrap(text: str, width: int) -> str:
    """Long titles and labels on several lines rather than cut off at the figure's edge;
    the line breaks ``text`` has are kept."""
    # Never inside a word that fits a line: a path or a date (2026-05-01) stays whole on its
    # line; only a word longer than a whole line (a sweep job's path) is cut, since it
    # would otherwise run past both edges of the figure.
    fill = textwrap.TextWrapper(width, break_long_words=True, break_on_hyphens=False).fill
    return "\n".join(fill(line) for line in text.splitlines())


def _style(mode: str) -> dict[str, str]:
    """A mode's colour and legend label (``gm.modes.TABLE``); grey for a chunkN mode."""
    if mode in BY_NAME:
        return {"color": BY_NAME[mode].color, "label": BY_NAME[mode].label}
    return {"color": "tab:gray", "label": mode}


def loss_by_position_figure(curves: dict[str, list[float]], title: str = "") -> Figure:
    """Validation loss at each position of a chunk, one line per mode; each curve has T
    positions and the mode's mean last (drawn as a dashed line, named in the legend).

    ``title`` names what the curves are of (run, model, step); it is the title's second
    line, under the fixed first line that says what is plotted."""
    fig, ax = plt.subplots(figsize=(10, 6), dpi=DPI, layout="constrained")
    for mode, values in curves.items():
        style = _style(mode)
        *by_position, mean = values
        # The stateful line is drawn on top: it is the one the others are compared with.
        z = 3 if mode == "stateful" else 2
        ax.plot(range(len(by_position)), by_position, lw=1.8, zorder=z, **style)
        ax.axhline(
            mean,
            ls=MEAN_LINE,
            lw=1.0,
            color=style["color"],
            label=f"{mode} mean: {mean:.3f}",
        )
    ax.set_xlabel(
        "position in the chunk (tokens since the chunk mode's reset; 0 = its first token)",
        fontsize=FONT["label"],
    )
    ax.set_ylabel("validation loss (nats per token; lower is better)", fontsize=FONT["label"])
    what = "Validation loss at each position of a chunk, in the three inference modes"
    ax.set_title(_wrap(f"{what}\n{title}" if title else what, 80), fontsize=FONT["title"])
    ax.tick_params(labelsize=FONT["ticks"])
    if ax.lines:
        # Below the axes: inside, it would hide the curves' first positions, where the
        # chunk mode differs most. Solid = by position, dashed = the mode's mean.
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=max(1, len(curves)),
            frameon=False,
            fontsize=FONT["legend"],
            title="solid: loss at each position · dashed: the mode's mean over all positions",
            title_fontsize=FONT["legend"],
        )
    ax.grid(alpha=0.3)
    return fig


def bar_figure(
    rows: dict[str, dict[str, float]],
    ylabel: str,
    title: str,
    errors: Mapping[str, Mapping[str, float]] | None = None,
) -> Figure:
    """Grouped bars: one group per row (a run), one bar per mode, each bar with its value;
    a missing value is a gap. ``errors[row][mode]``, where given, is drawn as an error bar
    of that half-width (a mean over seeds and its interval)."""
    width_in = max(10.0, 2.0 + 1.4 * len(rows))
    fig, ax = plt.subplots(figsize=(width_in, 6), dpi=DPI, layout="constrained")
    modes = [m for m in MODES if any(m in r for r in rows.values())]
    width = 0.8 / max(1, len(modes))
    for i, mode in enumerate(modes):
        xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(rows))]
        ys = [r.get(mode, math.nan) for r in rows.values()]
        spread = [(errors or {}).get(row, {}).get(mode, 0.0) for row in rows]
        bars = ax.bar(xs, ys, width, **_style(mode))
        if any(spread):
            ax.errorbar(xs, ys, yerr=spread, fmt="none", ecolor="black", capsize=4, lw=1)
        values = [
            (f"{y:.3f} ± {e:.3f}" if e else f"{y:.3f}") if math.isfinite(y) else ""
            for y, e in zip(ys, spread, strict=True)
        ]
        # Above the error bar, where there is one.
        for bar, value, e in zip(bars, values, spread, strict=True):
            ax.annotate(
                value,
                (bar.get_x() + bar.get_width() / 2, bar.get_height() + e),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=FONT["values"],
            )
    ax.set_xticks(range(len(rows)), [_wrap(label, 22) for label in rows], fontsize=FONT["ticks"])
    ax.tick_params(axis="y", labelsize=FONT["ticks"])
    ax.margins(y=0.12)  # room for the value labels above the bars
    ax.set_ylabel(ylabel, fontsize=FONT["label"])
    ax.set_title(_wrap(title, 80), fontsize=FONT["title"])
    if modes:
        # Below the figure: inside the axes it would hide the tallest bars' values.
        fig.legend(
            loc="outside lower center",
            ncol=len(modes),
            frameon=False,
            fontsize=FONT["legend"],
            title="inference mode (colour)",
            title_fontsize=FONT["legend"],
        )
    else:
        ax.text(0.5, 0.5, "nothing to plot yet", ha="center", transform=ax.transAxes)
    ax.grid(axis="y", alpha=0.3)
    return fig


def mode_curves_figure(
    curves: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]],
    title: str,
    ylabel: str,
    xlabel: str = "optimizer step",
    bands: Mapping[str, Mapping[str, Sequence[tuple[int, float, float]]]] | None = None,
) -> Figure:
    """One panel per inference mode, sharing the y scale; in each, one line per run.

    ``curves[run][mode]`` is that run's ``(step, value)`` points in that mode (a
    non-finite value is a gap); ``bands[run][mode]``, where given, ``(step, low, high)``
    shaded around it (a mean over seeds and its interval). A run has the same colour in
    every panel; the legend below the panels names the runs, each panel's title names its
    mode."""
    modes = list(MODES)
    rows_of_legend = math.ceil(len(curves) / 2)
    fig, axes = plt.subplots(
        1,
        len(modes),
        figsize=(16, 6 + 0.3 * rows_of_legend),
        dpi=DPI,
        sharey=True,
        layout="constrained",
        squeeze=False,
    )
    handles = []
    for i, run in enumerate(curves):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        # A run past ten colours is told apart by its line style as well.
        dashes = ("-", "--", ":", "-.")[(i // len(RUN_COLORS)) % 4]
        handles.append(Line2D([], [], color=color, ls=dashes, marker=".", label=_wrap(run, 70)))
        for ax, mode in zip(axes[0], modes, strict=True):
            points = curves[run].get(mode, ())
            if points:
                steps = [s for s, _ in points]
                # None, inf and NaN are gaps: one diverged validation must not set the scale.
                values = [v if v is not None and math.isfinite(v) else math.nan for _, v in points]
                ax.plot(steps, values, color=color, ls=dashes, marker=".", lw=1.4, label=run)
            band = (bands or {}).get(run, {}).get(mode, ())
            if band:
                at, low, high = zip(*band, strict=True)
                ax.fill_between(at, low, high, color=color, alpha=0.2, lw=0)
    for ax, mode in zip(axes[0], modes, strict=True):
        ax.set_title(_style(mode)["label"], fontsize=FONT["label"] + 1)
        ax.set_xlabel(xlabel, fontsize=FONT["label"])
        ax.tick_params(labelsize=FONT["ticks"])
        ax.grid(alpha=0.3)
        if not ax.lines:
            ax.text(0.5, 0.5, f"no {mode} validation logged", ha="center", transform=ax.transAxes)
    axes[0][0].set_ylabel(ylabel, fontsize=FONT["label"])
    fig.suptitle(_wrap(title, 120), fontsize=FONT["title"])
    if handles:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=min(2, len(handles)),
            frameon=False,
            fontsize=FONT["legend"],
            title=(
                "run (status) or group over seeds; its colour is the same in every panel"
                if bands
                else "run (status); its colour is the same in every panel"
            ),
            title_fontsize=FONT["legend"],
        )
    return fig


def save(fig: Figure, path: str | PathLike[str]) -> None:
    """Write ``fig`` as PNG at its own size, atomically (a full disk leaves the previous
    figure, never an empty file), and release it (it can still be inspected)."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=fig.dpi)
    plt.close(fig)
    write_bytes_atomic(path, png.getvalue())
