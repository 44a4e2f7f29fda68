"""Features of a text that a unit may track, and the units that track them best.

Each feature is a number per character: ``1``/``0`` for a property (inside brackets, on a
speaker's line) or a count (position within the line, within the word). A unit's score is
how well its activation follows a feature **once the current character is accounted for**:
the activation's mean per character is subtracted first, so a unit that merely fires on
``(`` or on letters scores nothing, and what remains is what the unit *remembers*. Binary
features are scored by the area under the ROC curve (AUC, folded so that 0.5 is chance and 1
perfect, whichever way the unit fires), counts by the absolute Pearson correlation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# A unit "tracks" a feature at or above these scores. Six models with random weights (GRU,
# LSTM, Elman; two layers of 64; two seeds) stayed below them on a play whose brackets and
# quotes hold the same words as the rest: at most AUC 0.757 and |r| 0.528, 2026-12-04
# (tests/explorer/test_features.py holds them to it).
FOUND = {"auc": 0.9, "r": 0.6}
_SPEAKER = re.compile(r"^[A-Z][A-Za-z' ]*:$")


def _enclosed(text: str, opening: str, closing: str) -> np.ndarray:
    """1 for the characters between an opening and its closing mark (the marks excluded)."""
    inside, depth = np.zeros(len(text)), 0
    for i, c in enumerate(text):
        if c == closing and depth:
            depth -= 1
        inside[i] = depth > 0
        if c == opening:
            depth += 1
    return inside


def _quoted(text: str) -> np.ndarray:
    inside, open_ = np.zeros(len(text)), False
    for i, c in enumerate(text):
        if c == '"':
            open_ = not open_
            continue
        inside[i] = open_
    return inside


def text_features(text: str) -> dict[str, np.ndarray]:
    """Every feature of ``text``, one value per character."""
    in_line, in_word, speaker = (np.zeros(len(text)) for _ in range(3))
    position = word = 0
    for start, line in _lines(text):
        is_speaker = bool(_SPEAKER.match(line))
        speaker[start : start + len(line)] = is_speaker
    for i, c in enumerate(text):
        in_line[i] = position
        position = 0 if c == "\n" else position + 1
        word = word + 1 if c.isalpha() else 0
        in_word[i] = word
    return {
        "inside brackets": _enclosed(text, "(", ")"),
        "inside quotes": _quoted(text),
        "on a speaker's line": speaker,
        "position in the line": in_line,
        "position in the word": in_word,
    }


def _lines(text: str) -> list[tuple[int, str]]:
    starts, out = 0, []
    for line in text.split("\n"):
        out.append((starts, line))
        starts += len(line) + 1
    return out


def is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0, 1)).all())


@dataclass(frozen=True)
class Match:
    """A unit and how well it tracks a feature (``score`` by ``metric``: "auc" or "r")."""

    feature: str
    unit: int
    score: float
    metric: str
    sign: int  # +1: higher activation where the feature is higher; -1: lower

    @property
    def found(self) -> bool:
        return self.score >= FOUND[self.metric]


def residual(activations: np.ndarray, chars: list[str]) -> np.ndarray:
    """``activations [T, units]`` less each unit's mean over the positions holding the same
    character: what the current character does not explain."""
    out = activations.astype(np.float64).copy()
    keys = np.array([ord(c) for c in chars])
    for key in np.unique(keys):
        rows = keys == key
        out[rows] -= out[rows].mean(axis=0)
    return out


def auc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The ROC AUC of each column of ``scores [T, units]`` for the binary ``labels [T]``
    (ties share their rank), by the Mann–Whitney statistic."""
    positives = labels.astype(bool)
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        return np.full(scores.shape[1], 0.5)
    ranks = np.apply_along_axis(_ranks, 0, scores)
    return (ranks[positives].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _ranks(column: np.ndarray) -> np.ndarray:
    order = np.argsort(column, kind="mergesort")
    ranks = np.empty(len(column))
    ranks[order] = np.arange(1, len(column) + 1)
    # Ties: the mean of their ranks.
    _, inverse, counts = np.unique(column, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def correlation(scores: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Pearson's r of each column of ``scores [T, units]`` with ``values [T]`` (0 where
    either does not vary)."""
    a = scores - scores.mean(axis=0)
    b = values - values.mean()
    denominator = np.sqrt((a**2).sum(axis=0) * (b**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b[:, None]).sum(axis=0) / denominator
    return np.nan_to_num(r)


def best_units(
    activations: np.ndarray, text_chars: list[str], features: dict[str, np.ndarray], top: int = 3
) -> dict[str, list[Match]]:
    """For each feature, the ``top`` units that track it best, best first."""
    rest = residual(activations, text_chars)
    found = {}
    for name, values in features.items():
        if is_binary(values):
            raw = auc(rest, values)
            score, sign, metric = np.maximum(raw, 1 - raw), np.where(raw >= 0.5, 1, -1), "auc"
        else:
            raw = correlation(rest, values)
            score, sign, metric = np.abs(raw), np.where(raw >= 0, 1, -1), "r"
        order = np.argsort(-score, kind="stable")[:top]
        found[name] = [Match(name, int(u), float(score[u]), metric, int(sign[u])) for u in order]
    return found
