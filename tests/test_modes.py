"""The inference modes' table: scoring and generation both follow each mode's context, and
every tool that names or describes a mode takes its words from the table."""

from __future__ import annotations

import pytest
import torch
from matplotlib.colors import to_rgba

from gm.evaluation import metric_key, mode_nll
from gm.figures import bar_figure
from gm.generation.generate import generate
from gm.models import RecurrentLM
from gm.modes import BY_NAME, MODES, TABLE, context_length
from gm.training.tensorboard import TAGS

V, T = 11, 6


@pytest.fixture
def model() -> RecurrentLM:
    torch.manual_seed(0)
    gru = RecurrentLM(V, "gru", 8, 16, 1).eval()
    with torch.no_grad():
        for p in gru.parameters():
            p.mul_(4)  # so that what the state remembers changes the logits
    return gru


def test_the_table_is_the_three_modes_in_order() -> None:
    assert MODES == ("stateful", "chunk", "stateless") == tuple(m.name for m in TABLE)
    assert [context_length(m, T) for m in MODES] == [None, T, 1]
    assert context_length("chunk32", T) == 32
    for bad in ("carried", "chunk0", "chunkx"):
        with pytest.raises(ValueError, match="unknown mode"):
            context_length(bad, T)


def test_the_chunk_mode_resets_at_the_training_chunk_even_in_a_shorter_last_one(model) -> None:
    """Validation's last chunk can be shorter than ``T``: it still starts from zeros and is
    not cut into windows of its own width."""
    x, y = torch.randint(0, V, (2, T + 4)), torch.randint(0, V, (2, T + 4))
    _, state = mode_nll(model, x[:, :T], y[:, :T], "chunk", None, 0, T)
    last, _ = mode_nll(model, x[:, T:], y[:, T:], "chunk", state, T, T)
    with torch.no_grad():
        alone = torch.nn.functional.cross_entropy(
            model(x[:, T:], None)[0].flatten(0, 1), y[:, T:].flatten(), reduction="none"
        )
    torch.testing.assert_close(last.flatten(), alone)


def test_generation_without_state_sees_exactly_the_modes_context(model) -> None:
    """The stateless mode is the chunk mode with a context of one token."""
    prompt = torch.randint(0, V, (12,)).tolist()

    def logits(mode: str, window: int) -> list[torch.Tensor]:
        seen: list[torch.Tensor] = []
        g = torch.Generator().manual_seed(1)
        generate(model, prompt, 8, mode, generator=g, window=window, on_logits=seen.append)
        return seen

    for a, b in zip(logits("stateless", T), logits("chunk", 1), strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(logits("stateful", T)[0], logits("stateless", T)[0])


def test_every_tool_describes_a_mode_in_the_tables_words() -> None:
    for mode in MODES:
        assert TAGS[metric_key("loss", mode)].endswith(BY_NAME[mode].scores)
    fig = bar_figure({"run": {m: 1.0 for m in MODES}}, "bpc", "title")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [BY_NAME[m].label for m in MODES]
    colors = [c.patches[0].get_facecolor() for c in fig.axes[0].containers]
    assert colors == [to_rgba(BY_NAME[m].color) for m in MODES]
