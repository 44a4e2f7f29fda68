"""How often each gate unit is saturated: the fraction of steps it is below 0.1 (left,
nearly closed) or above 0.9 (right, nearly open), per layer, as Karpathy, Johnson and
Fei-Fei (2015) plotted it. A forget gate right-saturated most of the time is a unit that
remembers; an update gate left-saturated is one that follows its input."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from gm.figures import FONT

LEFT, RIGHT = 0.1, 0.9
# The cells' sigmoid gates, by the names their ``step`` gives them (gm.nn).
GATES = ("r", "z", "i", "f", "o")
_COLOURS = {"r": "tab:blue", "z": "tab:orange", "i": "tab:green", "f": "tab:red", "o": "tab:purple"}
_NAMES = {"r": "reset r", "z": "update z", "i": "input i", "f": "forget f", "o": "output o"}


def saturation(layers: list[dict[str, np.ndarray]]) -> list[dict[str, dict[str, list[float]]]]:
    """Per layer, per gate: each unit's left- and right-saturated fraction of the steps."""
    return [
        {
            gate: {
                "left": (values < LEFT).mean(axis=0).round(4).tolist(),
                "right": (values > RIGHT).mean(axis=0).round(4).tolist(),
            }
            for gate, values in layer.items()
            if gate in GATES
        }
        for layer in layers
    ]


def saturation_figure(found: list[dict[str, dict[str, list[float]]]], title: str) -> Figure:
    """One panel per layer: every gate unit at (left, right) saturation."""
    panels = [layer for layer in found if layer]
    fig = Figure(figsize=(4 * max(1, len(panels)), 4.3), layout="constrained")
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for index, (ax, layer) in enumerate(zip(axes, panels, strict=False)):
        for gate, fractions in layer.items():
            ax.scatter(fractions["left"], fractions["right"], s=8, alpha=0.6,
                       color=_COLOURS[gate], label=_NAMES[gate])  # fmt: skip
        ax.plot([0, 1], [1, 0], color="0.8", linewidth=1)  # where a unit is always saturated
        ax.set(xlim=(0, 1), ylim=(0, 1), title=f"layer {index}")
        ax.set_xlabel(f"fraction of steps below {LEFT}", fontsize=FONT["label"])
        ax.set_ylabel(f"fraction of steps above {RIGHT}", fontsize=FONT["label"])
        ax.legend(fontsize=FONT["legend"], frameon=False)
    fig.suptitle(title, fontsize=FONT["title"])
    return fig
