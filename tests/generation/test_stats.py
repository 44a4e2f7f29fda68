"""Text figures: distinct-n, longest repeat, known words."""

from __future__ import annotations

from gm.generation.stats import distinct_n, known_word_share, longest_repeat, text_stats


def test_distinct_n() -> None:
    assert distinct_n("a b a b a b", 2) == 2 / 5
    assert distinct_n("the cat sat", 3) == 1.0
    assert distinct_n("one", 2) == 0.0


def test_longest_repeat() -> None:
    assert longest_repeat("abcXabcYabc") == "abc"
    assert longest_repeat("abcd") == ""
    assert longest_repeat("aaaa") == "aaa"  # overlapping occurrences count


def test_known_word_share_and_summary() -> None:
    assert known_word_share("To be, or NOT zzz", {"to", "be", "or", "not"}) == 0.8
    stats = text_stats("to be to be", None)
    assert stats["known_words"] is None and stats["longest_repeat"] == len("to be")
