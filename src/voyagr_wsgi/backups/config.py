"""Settings section for this area (placeholder until the area's issue lands)."""

from __future__ import annotations

from dataclasses import dataclass

from .._env import Env

__all__ = ["BackupSettings"]


@dataclass(frozen=True, slots=True)
class BackupSettings:
    """Options of this area; filled in by the area's issue."""

    @classmethod
    def from_env(cls, env: Env) -> BackupSettings:
        return cls()
