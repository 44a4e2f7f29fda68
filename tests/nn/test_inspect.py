"""``inspect`` (the explorer's view of a layer) is the layer: its ``h`` at every step is
``forward``'s output, the LSTM's last ``c`` is ``forward``'s carried cell state, and the
gates obey the cell's equations."""

from __future__ import annotations

import pytest
import torch

from gm.nn.stack import CELLS


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_inspect_is_forward(cell: str) -> None:
    torch.manual_seed(0)
    layer = CELLS[cell](5, 7)
    x = torch.randn(3, 11, 5)
    start = layer(torch.randn(3, 4, 5))[1]  # a carried state, not zeros
    out, state = layer(x, start)
    seen = layer.inspect(x, start)
    torch.testing.assert_close(seen["h"], out, rtol=1e-5, atol=1e-6)
    if cell == "lstm":
        torch.testing.assert_close(seen["c"][:, -1], state[1], rtol=1e-5, atol=1e-6)
        i, f, g, c = seen["i"], seen["f"], seen["g"], seen["c"]
        before = torch.cat([start[1][:, None], c[:, :-1]], dim=1)
        torch.testing.assert_close(c, f * before + i * g)
        torch.testing.assert_close(seen["h"], seen["o"] * torch.tanh(c))
    if cell == "gru":
        z, n = seen["z"], seen["n"]
        before = torch.cat([start[:, None], seen["h"][:, :-1]], dim=1)
        torch.testing.assert_close(seen["h"], (1 - z) * n + z * before)
    names = {"gru": {"r", "z", "n", "h"}, "lstm": {"i", "f", "g", "o", "c", "h"}, "rnn": {"h"}}
    assert set(seen) == names[cell]
    for name in {"r", "z", "i", "f", "o"} & set(seen):
        assert ((seen[name] > 0) & (seen[name] < 1)).all(), name
    assert not any(t.requires_grad for t in seen.values())


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("steps", [1, 6])
def test_inspect_starts_a_new_stream_from_zeros(cell: str, steps: int) -> None:
    torch.manual_seed(1)
    layer = CELLS[cell](5, 7)
    x = torch.randn(3, steps, 5)
    seen = layer.inspect(x)
    assert {t.shape for t in seen.values()} == {(3, steps, 7)}
    torch.testing.assert_close(seen["h"], layer(x)[0], rtol=1e-5, atol=1e-6)
