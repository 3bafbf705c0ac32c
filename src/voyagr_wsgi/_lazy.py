"""Lazy re-exports for package ``__init__`` modules (PEP 562), written once.

::

    _WHERE = {"MemoryStore": ".memory", "Rate": ".spec"}
    __all__ = sorted(_WHERE)
    __getattr__, __dir__ = lazy(__name__, _WHERE)

``from package import MemoryStore`` then imports ``package.memory`` on first use only, and
caches the name in the package, so the next access costs a plain attribute read. Names a
type checker must see go in an ``if TYPE_CHECKING:`` block of the same ``__init__``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy"]


def lazy(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``where`` maps a name to the module
    (relative to the package, ``".memory"``, or absolute) that defines it."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
