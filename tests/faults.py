"""Run an entry point with the disk refusing its N-th write: ``python -m tests.faults N LOG
SCRIPT ARGS...``.

Every file the run opens for writing (``open`` in a writing mode, ``os.open`` with a
writing flag, ``safetensors`` saving) counts as one write; the N-th fails with ENOSPC, as
on a full disk (N = 0: none fails). ``LOG`` receives one line per write, with its path,
so that a first pass lists what a run writes and later passes can fail each in turn.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import runpy
import sys

_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def install(fail_at: int, log_path: str) -> None:
    """Count every write from now on; the ``fail_at``-th raises ENOSPC."""
    count = 0
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    real_open, real_os_open = builtins.open, os.open

    def counted(path: object) -> None:
        nonlocal count
        count += 1
        shown = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else path
        log.write(f"{count}\t{shown}\n")
        if count == fail_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    def fault_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not isinstance(file, int):
            counted(file)
        return real_open(file, mode, *args, **kwargs)

    def fault_os_open(path, flags, *args, **kwargs):
        if flags & _WRITING:
            counted(path)
        return real_os_open(path, flags, *args, **kwargs)

    builtins.open = io.open = fault_open
    os.open = fault_os_open
    import safetensors.torch

    real_save = safetensors.torch.save_file

    def fault_save(tensors, filename, *args, **kwargs):
        counted(filename)
        return real_save(tensors, filename, *args, **kwargs)

    safetensors.torch.save_file = fault_save
    import gm.artifacts

    gm.artifacts.save_file = fault_save  # (imported by name there)


if __name__ == "__main__":
    fail_at, log_path, script, *args = sys.argv[1:]
    install(int(fail_at), log_path)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))
    runpy.run_path(script, run_name="__main__")
