"""Where the repository keeps its data: one place, so moving a module never breaks a path."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
PROFILES = REPO / "profiles"
ENVS = REPO / "envs"
