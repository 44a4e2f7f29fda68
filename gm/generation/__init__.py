"""Sampling in the study's three inference modes (``gm.modes``), and figures
about the text it makes."""

from gm.generation.generate import generate
from gm.generation.sampling import SamplingOptions, sample_next

__all__ = ["SamplingOptions", "generate", "sample_next"]
