"""Optional dependencies (extras): a missing one is a clear error naming the extra.

The default stack needs nothing beyond the standard library. A setting that turns on a
backend checks for its package when the stack is built, not at the first request::

    require("redis", "RATE_LIMIT_STORAGE=redis://...", extra="redis")
    # ConfigurationError: RATE_LIMIT_STORAGE=redis://... needs: pip install 'voyagr-wsgi[redis]'
"""

from __future__ import annotations

import importlib.util

from .errors import ConfigurationError

__all__ = ["missing", "require"]


def missing(what: str, extra: str) -> ConfigurationError:
    """The error for ``what`` (a setting or a class) when extra ``extra`` is not installed."""
    return ConfigurationError(f"{what} needs: pip install 'voyagr-wsgi[{extra}]'")


def require(module: str, what: str, *, extra: str) -> None:
    """Raise :func:`missing` unless ``module`` can be imported (nothing is imported here)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except ValueError:  # a module set to None in sys.modules: blocked on purpose
        found = False
    if not found:
        raise missing(what, extra)
