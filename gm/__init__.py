"""GenerateMore: language models from first principles, trained and sampled with carried state."""

__version__ = "0.1.0"
