"""The data-preparation benchmark: its synthetic corpus, its overrides, its measurements."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.data_prep import MB, main, make_corpus, measure, repetitions, train_overrides
from tests.conftest import ROOT, generated_text


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """Paragraphs of generated lines, some of them with characters of 2, 3 and 4 bytes."""
    lines = generated_text(30000).splitlines()
    extra = ["Thé café — naïve ſtraße ⚔ 🎭 end.", "Ωmega: ça va?"]
    paragraphs = [
        "\n".join([*lines[i : i + 5], extra[(i // 5) % 2]]) for i in range(0, len(lines), 5)
    ]
    path = tmp_path / "source.txt"
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


def test_the_corpus_has_the_size_asked_and_is_utf8_with_the_source_characters(
    source: Path, tmp_path: Path
) -> None:
    for size_mb in (0.2, 0.123457):  # the second ends inside a multi-byte character or not
        out = tmp_path / f"corpus-{size_mb}.txt"
        make_corpus(source, size_mb, out)
        data = out.read_bytes()
        assert len(data) == round(size_mb * MB)
        text = data.decode("utf-8")  # raises if a character was cut
        assert set(text) == set(source.read_text(encoding="utf-8"))
    assert not list(tmp_path.glob("*.partial"))


def test_the_corpus_is_the_same_for_a_seed_and_another_for_another_seed(
    source: Path, tmp_path: Path
) -> None:
    a, b, c = (tmp_path / f"{name}.txt" for name in "abc")
    make_corpus(source, 0.1, a, seed=7)
    make_corpus(source, 0.1, b, seed=7)
    make_corpus(source, 0.1, c, seed=8)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_each_repetition_is_a_perturbed_copy_with_the_source_characters(source: Path) -> None:
    text = source.read_text(encoding="utf-8")
    copies = repetitions(text, seed=0, swap_fraction=0.1)
    first, second = next(copies), next(copies)
    assert first != second and text not in (first, second)  # not periodic
    assert sorted(first.rstrip("\n")) == sorted(text.rstrip("\n"))  # same characters, reordered
    assert sorted(first.splitlines()) != sorted(text.splitlines())  # words swapped in lines


def test_make_corpus_says_what_it_did_in_one_sentence(source: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "corpus.txt"
    main(["make-corpus", "--source", str(source), "--size-mb", "0.05", "--out", str(out)])
    said = capsys.readouterr().out.strip()
    assert out.stat().st_size == 50_000
    assert "\n" not in said and "paragraphs shuffled" in said and "random.Random(0)" in said


def test_the_training_overrides_drop_only_the_callbacks_a_checkout_has(tmp_path: Path) -> None:
    corpus, run = tmp_path / "c.txt", tmp_path / "run"
    newer = train_overrides(ROOT, corpus, run, "astra_alpha", "char")
    assert {"~callbacks.validate_at_start", "~callbacks.samples"} <= set(newer)
    assert "trainer.num_sanity_val_steps=0" in newer and f"hydra.run.dir={run}" in newer
    older = tmp_path / "older"
    (older / "conf" / "callbacks").mkdir(parents=True)
    (older / "conf" / "callbacks" / "default.yaml").write_text(
        "# samples: not yet\ncheckpoint:\n  _target_: x\n  every_n_train_steps: null\n"
    )
    assert not [o for o in train_overrides(older, corpus, run, "astra_alpha", "char") if "~" in o]
    spm = train_overrides(ROOT, corpus, run, "astra_alpha", "sentencepiece")
    assert "data=shakespeare_spm" in spm


@pytest.mark.slow
def test_measure_times_this_checkout_cold_and_warm(source: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    make_corpus(source, 0.2, corpus)
    report = measure(corpus, ROOT, work_dir=tmp_path, echo=False)
    assert Path(report["gm_file"]).is_relative_to(ROOT) and report["threads"] == 1
    got = {(m["phase"], m["cache"]): m for m in report["measurements"]}
    assert set(got) == {(p, c) for p in ("prepare", "train") for c in ("cold", "warm")}
    for m in got.values():
        for key in ("seconds", "wall_s", "peak_rss_kib"):
            assert math.isfinite(m[key]) and m[key] > 0
        assert m["seconds"] <= m["wall_s"]
    assert got["prepare", "cold"]["mb_per_s"] > 0
    assert not list(tmp_path.glob("gm-data-prep-*"))  # the data dirs are removed
