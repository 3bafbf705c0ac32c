"""voyagr_wsgi: the production layer for any WSGI application.

::

    from voyagr_wsgi import compose, Settings
    application = compose(app, Settings.from_env())

See ``compose`` for the layer order, ``Settings`` for every option, and the README.
Nothing starts at import: background services start with ``application.start()``. ``compose``
is light; ``Settings`` and every area load on first use (``from voyagr_wsgi.layers import
HostCheck`` loads that layer, not the settings or the areas).
"""

from __future__ import annotations

import typing

from ._lazy import lazy as _lazy
from ._version import __version__
from .compose import Stack, compose
from .errors import ConfigurationError, VoyagrError, VoyagrWarning

if typing.TYPE_CHECKING:
    from .secret import Secret as Secret
    from .settings import Settings as Settings

__all__ = [
    "ConfigurationError",
    "Secret",
    "Settings",
    "Stack",
    "VoyagrError",
    "VoyagrWarning",
    "__version__",
    "compose",
]

_WHERE = {"Secret": ".secret", "Settings": ".settings"}


__getattr__, __dir__ = _lazy(__name__, _WHERE)
