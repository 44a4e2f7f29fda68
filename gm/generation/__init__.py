"""Sampling in the study's three inference modes, and figures about the text it makes."""

from gm.generation.generate import MODES, generate
from gm.generation.sampling import SamplingOptions, sample_next

__all__ = ["MODES", "SamplingOptions", "generate", "sample_next"]
