"""Process-wide settings that make a run fast, set by whoever starts one (``train``),
explicitly, before the work they affect.

The kernel cache: ``torch.compile`` writes its compiled kernels to
``$TORCHINDUCTOR_CACHE_DIR``; pointing it at gm's data directory lets a second run start
without compiling again.

Memory reuse:
A recurrent training step allocates the same activations, per time step, at every step.
glibc's ``malloc`` serves blocks above its mmap threshold (128 KiB at first, adjusted up
to 32 MiB) with a fresh ``mmap`` and unmaps them again when freed, and it returns the
top of its heap to the system once more than the trim threshold is free there: each step
then pays the kernel to fault the same pages in again. Measured on this project's CPU,
that was 10–25 % of a Leviathan ``bf16-mixed`` step (docs/benchmarks.md). Raising both
thresholds keeps freed memory in the process for the next step; the peak memory is the
same, it is simply not given back between steps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

# mallopt(3) parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LARGEST = 2**31 - 1  # mallopt takes an int


def keep_freed_memory() -> bool:
    """Ask glibc's ``malloc`` to serve tensors from its heap and keep freed memory for
    reuse (see the module docstring). Returns whether it applied: elsewhere than Linux
    with glibc it changes nothing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _LARGEST) and mallopt(_M_TRIM_THRESHOLD, _LARGEST))


def cache_compiled_kernels() -> Path:
    """Keep ``torch.compile``'s kernels under ``$GM_DATA_DIR/inductor`` (default
    ``~/.cache/generatemore/inductor``) unless ``TORCHINDUCTOR_CACHE_DIR`` already says
    where; return the directory in use. Call it before the first compilation."""
    data = Path(os.environ.get("GM_DATA_DIR", Path.home() / ".cache" / "generatemore"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(data / "inductor"))
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
