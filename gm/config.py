"""Hydra set-up shared by the entry points: the config directory, custom resolvers, and
what the running Hydra job is (``is_multirun``, ``model_choice``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import OmegaConf

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = PACKAGE_ROOT / "conf"


def project_root() -> str:
    """The checkout ``gm`` runs from (it has ``pyproject.toml``), else the launch directory."""
    if (PACKAGE_ROOT / "pyproject.toml").is_file():
        return str(PACKAGE_ROOT)
    return str(Path.cwd())


def first_set(*values: object) -> object:
    """The first argument that is not null (``${gm_first:${resume},default}``)."""
    return next((v for v in values if v not in (None, "", "null")), None)


def job_dirname(num: int, overrides: str, limit: int = 200) -> str:
    """A sweep job's folder, ``<num>_<overrides>`` (``${gm_job_dir:...}``).

    Cut to ``limit`` bytes, with a hash of the whole so names stay distinct, when many
    overrides would exceed the file system's 255-byte name limit; the full list is in the
    job's ``.hydra/overrides.yaml``.
    """
    # A "/" in a swept value would nest folders: a job is one folder.
    overrides = overrides.replace("/", "_")
    name = f"{num}_{overrides}" if overrides else str(num)
    if len(name.encode()) <= limit:
        return name
    digest = hashlib.sha256(overrides.encode()).hexdigest()[:8]
    return name.encode()[: limit - 9].decode(errors="ignore") + "-" + digest


def is_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun (``-m``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def model_choice() -> str:
    """The ``model=`` choice of this Hydra run (e.g. ``astra_alpha``), or "" outside Hydra.

    Read by the entry point only; the name is passed down from there, never looked up
    deeper in the stack.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return ""
    return str(HydraConfig.get().runtime.choices.get("model") or "")


def task_overrides() -> list[str]:
    """The overrides of this Hydra run's command line (not ``hydra.*``), or [] outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [str(o) for o in HydraConfig.get().overrides.task]


def register_resolvers() -> None:
    """Make the ``gm_root``, ``gm_first`` and ``gm_job_dir`` resolvers available to
    configs (idempotent)."""
    for name, fn in (
        ("gm_root", project_root),
        ("gm_first", first_set),
        ("gm_job_dir", job_dirname),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()
