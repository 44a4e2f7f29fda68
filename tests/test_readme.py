"""The README's Python snippet runs as printed (on a trained run), so it cannot rot."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from tests.conftest import ROOT

MARKER = "<!-- tested: tests/test_readme.py runs this block -->"


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    assert MARKER in text, "the README's Python snippet lost its marker"
    match = re.search(r"```python\n(.*?)```", text.split(MARKER, 1)[1], re.S)
    assert match, "no ```python block after the marker"
    return match.group(1)


def test_the_readme_python_snippet_runs(trained_run: Path) -> None:
    snippet = readme_snippet()
    path = re.search(r'gm\.load\("([^"]+)"\)', snippet)
    assert path, 'the snippet loads a model with gm.load("...")'
    code = snippet.replace(path.group(1), str(trained_run))
    # The generated run knows few characters: the snippet's prompt and text, in them.
    chars = "".join(gm_chars(trained_run))
    code = re.sub(r'"(ROMEO:|To be[^"]*)"', lambda m: repr(_within(m.group(1), chars)), code)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue()
    assert "'stateful': {'loss'" in printed and "'stateless'" in printed


def gm_chars(run: Path) -> list[str]:
    import gm

    return gm.load(run).tokenizer.chars


def _within(text: str, chars: str) -> str:
    """``text`` with each character the run never saw replaced by one it did."""
    return "".join(c if c in chars else chars[ord(c) % len(chars)] for c in text)
