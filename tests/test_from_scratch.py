"""`gm/` writes its recurrence by hand: no built-in recurrent module anywhere in the package."""

from __future__ import annotations

import re

from tests.conftest import ROOT

BANNED = re.compile(
    r"\bnn\.(RNN|GRU|LSTM|RNNCell|GRUCell|LSTMCell)\b|_VF\.(gru|lstm|rnn)|\brnn_tanh\b"
)


def test_gm_has_no_builtin_recurrent_module() -> None:
    sources = sorted((ROOT / "gm").rglob("*.py"))
    assert sources, "no package sources found"
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in sources
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if BANNED.search(line)
    ]
    assert not hits, "built-in recurrent modules in gm/:\n" + "\n".join(hits)


def test_the_check_would_catch_one() -> None:
    assert BANNED.search("self.rnn = nn.GRU(10, 20)")
    assert BANNED.search("torch.nn.LSTMCell(3, 4)")
    assert not BANNED.search("from gm.nn import GRULayer")
