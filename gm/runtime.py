"""Process-wide settings that make a run fast, set by whoever starts one (``train``),
explicitly, before the work they affect.

Threads: torch starts with one thread per core. Two training processes on one machine
then run twice as many threads as there are cores, and each spends its time waiting
for the other's: measured on this project's 2-core CPU, astra_alpha fell from ~130,000
to ~2,100 tokens/s. ``TrainingProcesses`` counts the gm runs training on the machine and
``share_of_cores`` gives each its share.

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
import tempfile
from pathlib import Path

try:  # file locks: POSIX only
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None

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


def cores() -> int:
    """The cores this process may run on (its CPU affinity: taskset, cgroups, SLURM)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def share_of_cores(processes: int) -> int:
    """Threads for one of ``processes`` training processes on this machine: a share of
    ``cores()``, unless ``OMP_NUM_THREADS`` already says (a launcher that caps its
    workers, as joblib's loky and Lightning's DDP do, or the user)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, cores() // max(1, processes))


class TrainingProcesses:
    """The gm training processes running on this machine, for this user: each holds a
    lock on a file of its own in a shared folder while it trains, so the count is right
    even after a process is killed (the kernel releases its lock).

    ``with TrainingProcesses() as running: running.count()``
    """

    def __init__(self, directory: Path | None = None) -> None:
        uid = os.getuid() if hasattr(os, "getuid") else 0
        self.directory = directory or Path(tempfile.gettempdir()) / f"generatemore-{uid}"
        self._fd: int | None = None

    def __enter__(self) -> TrainingProcesses:
        if fcntl is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(
                self.directory / f"{os.getpid()}.lock", os.O_CREAT | os.O_RDWR, 0o600
            )
            try:  # held until exit, or the process's death
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # this process holds it already: counted once
                os.close(self._fd)
                self._fd = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock; the file stays for the pid's next use
            self._fd = None

    def count(self) -> int:
        """Processes holding their lock now, this one included (1 where locks are not
        available)."""
        if fcntl is None or not self.directory.is_dir():
            return 1
        live = 0
        for path in self.directory.glob("*.lock"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                live += 1  # locked by a process that is running
            finally:
                os.close(fd)
        return max(1, live)
