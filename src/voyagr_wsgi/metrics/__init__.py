"""metrics area (filled in by its issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..compose import BuildContext
    from ..settings import Settings


def setup(settings: Settings, context: BuildContext) -> None:
    """Register this area's components, admin routes, health sources and services."""
