"""The study's three inference modes, as one table that every tool reads.

A mode is how much of the text the model may remember: its ``context``, the number of
tokens it has seen since its state was last reset. Scoring (``gm.evaluation.mode_nll``)
resets the state every ``context`` tokens along the text; generation
(``gm.generation.generate``) recomputes each new token over the last ``context`` tokens
from a zero state. The stateful mode never resets: it carries the state.

``TABLE`` says, for each mode, what it remembers, how it scores and how it generates.
A chunk mode at another length (``chunk256``, from ``eval.chunk_len``) scores with a
context of that many tokens; it is not a generation mode.

Training, validation, the study, ``generate.py``, TensorBoard's descriptions, the figures'
legends and the report all take the names, order and words from ``TABLE``.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQ_LEN = "seq_len"  # a context of the training chunk length, whatever it is


@dataclass(frozen=True)
class Mode:
    """One inference mode: what it remembers, and how scoring and generation apply that."""

    name: str
    context: int | str | None  # None: everything; SEQ_LEN: the training chunk; else tokens
    short: str  # what it remembers, in a few words (a legend's)
    scores: str  # how validation and the study score in it
    generates: str  # how generation samples in it
    color: str  # its colour in every figure

    @property
    def label(self) -> str:
        """The name with what it remembers: ``stateful (state carried)``."""
        return f"{self.name} ({self.short})"


TABLE = (
    Mode(
        name="stateful",
        context=None,
        short="state carried",
        scores="state carried through the whole validation stream",
        generates="the state built from the prompt and carried through every new token",
        color="tab:green",
    ),
    Mode(
        name="chunk",
        context=SEQ_LEN,
        short="reset every T tokens",
        scores="state reset every data.seq_len tokens",
        generates="no state kept: each new token recomputed over the last T tokens",
        color="tab:blue",
    ),
    Mode(
        name="stateless",
        context=1,
        short="reset every token",
        scores="state reset before every token",
        generates="no state kept: each new token from the last token alone",
        color="tab:red",
    ),
)

MODES = tuple(mode.name for mode in TABLE)
BY_NAME = {mode.name: mode for mode in TABLE}


def chunk_mode(chunk_len: int) -> str:
    """The name of the chunk mode at another length than the training chunk: ``chunk256``
    resets the state every 256 tokens (``chunk`` itself resets every ``data.seq_len``)."""
    return f"chunk{chunk_len}"


def chunk_length(mode: str) -> int | None:
    """The reset length of an extra chunk mode (``chunk256`` -> 256), else None."""
    rest = mode.removeprefix("chunk")
    return int(rest) if rest != mode and rest.isdigit() else None


def context_length(mode: str, seq_len: int) -> int | None:
    """The tokens ``mode`` lets the model see since its last reset, with training chunks
    of ``seq_len``: None for the stateful mode (everything). Raises ValueError for a name
    that is no mode."""
    length = chunk_length(mode)
    if length is not None and length > 0:
        return length
    if mode not in BY_NAME:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES} or chunkN")
    context = BY_NAME[mode].context
    return seq_len if context == SEQ_LEN else context
