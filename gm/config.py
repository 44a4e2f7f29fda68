"""Hydra set-up shared by the entry points: the config directory and custom resolvers."""

from __future__ import annotations

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


def register_resolvers() -> None:
    """Make ``${gm_root:}`` and ``${gm_first:...}`` available to configs (idempotent)."""
    if not OmegaConf.has_resolver("gm_root"):
        OmegaConf.register_new_resolver("gm_root", project_root)
    if not OmegaConf.has_resolver("gm_first"):
        OmegaConf.register_new_resolver("gm_first", first_set)


register_resolvers()
