"""Figures that tell degenerate text from plausible text, without a reference."""

from __future__ import annotations

import re

WORD = re.compile(r"[A-Za-z']+")


def words(text: str) -> list[str]:
    """Lower-cased words (letters and apostrophes)."""
    return [w.lower().strip("'") for w in WORD.findall(text) if w.strip("'")]


def distinct_n(text: str, n: int) -> float:
    """Distinct word n-grams / all word n-grams (Li et al., 2016); 0 when there are none."""
    ws = words(text)
    grams = [tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def longest_repeat(text: str) -> str:
    """The longest substring that occurs at least twice (occurrences may overlap)."""

    def repeated(length: int) -> str | None:
        seen: set[str] = set()
        for i in range(len(text) - length + 1):
            s = text[i : i + length]
            if s in seen:
                return s
            seen.add(s)
        return None

    lo, hi, best = 1, len(text) - 1, ""
    while lo <= hi:  # a repeat of length L implies one of every shorter length
        mid = (lo + hi) // 2
        found = repeated(mid)
        if found is not None:
            best, lo = found, mid + 1
        else:
            hi = mid - 1
    return best


def known_word_share(text: str, vocabulary: set[str]) -> float:
    """Share of the generated words that occur in ``vocabulary``; 0 when there are none."""
    ws = words(text)
    return sum(w in vocabulary for w in ws) / len(ws) if ws else 0.0


def text_stats(text: str, vocabulary: set[str] | None = None) -> dict[str, float | int | None]:
    """distinct-2, distinct-3, longest repeat length and (with a vocabulary) known-word share."""
    return {
        "distinct_2": distinct_n(text, 2),
        "distinct_3": distinct_n(text, 3),
        "longest_repeat": len(longest_repeat(text)),
        "known_words": known_word_share(text, vocabulary) if vocabulary is not None else None,
    }
