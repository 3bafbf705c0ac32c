"""voyagr_wsgi: the production layer for any WSGI application.

::

    from voyagr_wsgi import compose, Settings
    application = compose(app, Settings.from_env())

See ``compose`` for the layer order, ``Settings`` for every option, and the README.
Nothing starts at import: background services start with ``application.start()``.
"""

from __future__ import annotations

from ._version import __version__
from .compose import Stack, compose
from .errors import ConfigurationError, VoyagrError, VoyagrWarning
from .secret import Secret
from .settings import Settings

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
