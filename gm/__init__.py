"""GenerateMore: language models from first principles, trained and sampled with carried state.

``gm.load``, ``gm.evaluate`` and ``gm.sample`` are the Python API (``gm.api``); they are
imported on first use, so that importing any part of ``gm`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
_API = ("load", "evaluate", "sample", "TrainedModel")


def __getattr__(name: str) -> Any:
    if name in _API:
        import gm.api

        return getattr(gm.api, name)
    raise AttributeError(f"module 'gm' has no attribute {name!r}")


__all__ = ["__version__", *_API]
