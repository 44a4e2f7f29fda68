"""Run the project's entry points as a user would, each in a process of its own, fast.

Every run is a separate process: its own exit status, stdout and stderr, nothing shared
with the tests or with other runs. The processes are forked from a server that has already
imported torch, Lightning and Hydra (multiprocessing's forkserver: the server never runs a
torch op, so forking it is safe), so a run costs its own work, not four seconds of imports.
Runs that start processes of their own (DDP, sweeps) or must be killed from outside use a
plain ``subprocess`` instead.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import resource
import runpy
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

# What every entry point imports first; the server imports it once.
PRELOAD = ["torch", "lightning.pytorch", "hydra", "omegaconf", "gm.training.train", "gm.cli"]

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOAD)


def _child(
    target: list[str], cwd: str, env: dict[str, str], out: str, err: str, memory: int | None
) -> None:
    """In the forked process: become ``python TARGET...`` with stdout/stderr in files,
    its address space limited to ``memory`` bytes when given."""
    if memory is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    for fd, path in ((1, out), (2, err)):
        file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(file, fd)
        os.close(file)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    code = 0
    try:
        if target[0] == "-m":
            sys.argv = [target[1], *target[2:]]
            runpy.run_module(target[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = target
            sys.path.insert(0, str(Path(target[0]).parent))
            runpy.run_path(target[0], run_name="__main__")
    except SystemExit as stop:
        if isinstance(stop.code, int):
            code = stop.code
        elif stop.code is not None:  # sys.exit("message"), as the interpreter prints it
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # what an interpreter does on the way out
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_entrypoint(
    target: list[str], cwd: Path, env: dict[str, str], timeout: float, memory: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``python *target`` (a script path and its arguments, or ``-m module ...``) in ``cwd``
    with exactly ``env``; raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds.
    ``memory``: the most bytes of address space the run may map (``RLIMIT_AS``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        child = _context.Process(target=_child, args=(target, str(cwd), env, out, err, memory))
        child.start()
        child.join(timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(target, timeout)
        return subprocess.CompletedProcess(
            [sys.executable, *target],
            child.exitcode,
            Path(out).read_text(errors="replace"),
            Path(err).read_text(errors="replace"),
        )
