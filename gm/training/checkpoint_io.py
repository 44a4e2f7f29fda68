"""Checkpoint files written atomically, with a sentence when the disk refuses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from gm.errors import UserError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves to a temporary file beside the target and renames it into place, so a kill or
    a full disk during a save leaves the previous checkpoint whole."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise UserError(
                f"could not write the checkpoint {path} ({e.strerror or e}); "
                "the previous checkpoint is intact, free some space and resume=RUN_DIR"
            ) from e
