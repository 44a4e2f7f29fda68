"""Corpus resolution (a user's file, the verified cache, a verified download, clear errors)
and the 90/10 split."""

from __future__ import annotations

from pathlib import Path

import pytest

from gm.data.corpus import SOURCES, read_corpus, resolve_corpus, sha256_bytes, split_text
from gm.errors import UserError

TINY_SHAKESPEARE_SHA256 = SOURCES["tinyshakespeare"].sha256


def test_reads_any_utf8_file(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text("ça va — déjà vu\n", encoding="utf-8")
    corpus = read_corpus(p)
    assert corpus.read() == "ça va — déjà vu\n" and corpus.chars == 16
    assert corpus.sha256 == sha256_bytes(p.read_bytes())


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda d: d / "missing.txt", "does not exist"),
        (lambda d: d, "is not a file"),
        (lambda d: (d / "bin.txt", (d / "bin.txt").write_bytes(b"ok\xff\xfe"))[0], "not UTF-8"),
        (lambda d: (d / "empty.txt", (d / "empty.txt").write_text("  \n"))[0], "is empty"),
    ],
)
def test_bad_files_are_one_sentence(tmp_path: Path, make, needle: str) -> None:
    with pytest.raises(UserError, match=needle) as e:
        read_corpus(make(tmp_path))
    assert "\n" not in str(e.value)


def test_explicit_path_wins_over_cache(tmp_path: Path, text_file: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "tinyshakespeare.txt").write_text("cached")
    assert resolve_corpus(text_file, tmp_path / "cache").path == text_file


def test_downloads_verifies_and_caches(tmp_path: Path, text_file: Path) -> None:
    sha = sha256_bytes(text_file.read_bytes())
    data_dir = tmp_path / "data"
    corpus = resolve_corpus(None, data_dir, url=text_file.as_uri(), sha256=sha)
    assert corpus.path == data_dir / "tinyshakespeare.txt"
    assert corpus.read() == text_file.read_text()
    # The second call reads the cache: the source is gone and it still works.
    text_file.unlink()
    assert resolve_corpus(None, data_dir, url=text_file.as_uri(), sha256=sha).sha256 == sha


def test_download_with_wrong_checksum_leaves_nothing(tmp_path: Path, text_file: Path) -> None:
    data_dir = tmp_path / "data"
    with pytest.raises(UserError, match="sha256"):
        resolve_corpus(None, data_dir, url=text_file.as_uri(), sha256=TINY_SHAKESPEARE_SHA256)
    assert not (data_dir / "tinyshakespeare.txt").exists()


def test_offline_names_data_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"data\.path="):
        resolve_corpus(None, tmp_path, url="http://127.0.0.1:9/input.txt", sha256="0" * 64)


def test_tampered_cache_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tinyshakespeare.txt").write_text("not shakespeare")
    with pytest.raises(UserError, match="wrong sha256"):
        resolve_corpus(None, tmp_path)


def test_real_corpus_is_the_published_one(shakespeare: Path) -> None:
    corpus = read_corpus(shakespeare)
    assert corpus.sha256 == TINY_SHAKESPEARE_SHA256
    assert corpus.size == corpus.chars == 1_115_394 and len(corpus.alphabet) == 65


def test_split_is_contiguous_ninety_ten() -> None:
    train, val = split_text("abcdefghij" * 10)
    assert (len(train), len(val)) == (90, 10)
    assert train + val == "abcdefghij" * 10


def test_a_bad_source_encoding_or_split_is_one_sentence(tmp_path: Path, text_file: Path) -> None:
    from gm.data.corpus import split_bounds

    with pytest.raises(UserError, match=r"data\.source=wiki is not a corpus gm knows"):
        resolve_corpus(None, tmp_path, source="wiki")
    with pytest.raises(UserError, match=r"data\.encoding=klingon is not an encoding"):
        read_corpus(text_file, encoding="klingon")
    for bad in ([0.9], [0.5, 0.4, 0.2], [0.9, 0.0], [0.2, 0.3, 0.3, 0.2]):
        with pytest.raises(UserError, match=r"data\.splits=.* two or three positive fractions"):
            split_bounds(100, bad)
    assert split_bounds(100) == [(0, 90), (90, 100)]
    assert split_bounds(1000, [0.9, 0.05, 0.05]) == [(0, 900), (900, 950), (950, 1000)]
    assert split_bounds(1000, [0.5, 0.25]) == [(0, 500), (500, 750)]  # the rest left out


def test_an_archive_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    import hashlib
    import zipfile
    from dataclasses import replace

    from gm.data.corpus import download

    archive = tmp_path / "text8.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("text8", "only a few characters")
    source = replace(
        SOURCES["text8"],
        url=archive.as_uri(),
        sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
    )
    with pytest.raises(UserError, match="has 21 bytes, expected 100,000,000"):
        download(source, tmp_path / "data" / "text8")
    assert not list((tmp_path / "data").iterdir())  # nothing half-written
