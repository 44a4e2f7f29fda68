"""DDP around a Hydra run: which process may write, and which launches a sweep cannot make.

Lightning's ``ddp`` strategy starts processes 1..N−1 by running the entry point again
with ``hydra.run.dir`` set to the launching run's directory, so every process trains in
that one directory; the data layout that keeps the carried state correct is in
``gm.data.streams``.
"""

from __future__ import annotations

import os

import lightning as L

from gm.config import is_multirun
from gm.errors import UserError


def is_global_zero() -> bool:
    """Whether this process is DDP's global rank 0 (true outside DDP).

    Read from the launcher's environment, so it is known before a ``Trainer`` exists:
    torchrun and SLURM set the global rank; Lightning's own launcher sets the local and
    node ranks of the processes it starts.
    """
    for var in ("RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(os.environ[var]) == 0
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def check_launcher(trainer: L.Trainer) -> None:
    """Refuse a strategy that re-runs the script from inside a Hydra multirun: the copies
    would each start the whole sweep again."""
    from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher

    if is_multirun() and isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher):
        raise UserError(
            "trainer.strategy=ddp starts its extra processes by running train.py again, which "
            "a multirun (-m) cannot do; in a sweep use one device per job, "
            "trainer.strategy=ddp_spawn, or a cluster launcher (hydra/launcher=slurm)"
        )
