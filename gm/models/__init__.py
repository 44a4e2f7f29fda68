"""Model families behind the one interface ``forward(tokens, state) -> (logits, state)``."""

from gm.models.recurrent_lm import RecurrentLM

__all__ = ["RecurrentLM"]
