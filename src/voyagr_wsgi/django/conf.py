"""Settings for the Django integration: ``settings.VOYAGR`` over the environment.

``VOYAGR`` is a dict of the environment variable names (``.env.production`` lists them all)
to values; strings as in the environment, or Python values: ``True``/``False``, numbers, and
lists or tuples (joined with commas)::

    VOYAGR = {
        "ALLOWED_HOSTS": ALLOWED_HOSTS,        # voyagr's own host check (may reuse Django's)
        "TRUSTED_PROXIES": "10.0.0.0/8",
        "RATE_LIMIT_REQUESTS": 100,
    }

A name set in ``VOYAGR`` wins over the same environment variable. Then the Django defaults:
the CSRF cookie (``CSRF_COOKIE_NAME``, ``csrftoken``) is added to
``SECURE_COOKIES_HTTPONLY_EXEMPT`` unless ``CSRF_COOKIE_HTTPONLY = True``, because Django's
AJAX recipe reads it from JavaScript.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..settings import Settings

__all__ = ["settings_from_django", "voyagr_environ", "with_django_defaults"]


def voyagr_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default ``os.environ``) with ``settings.VOYAGR`` over it, as strings."""
    from django.conf import settings

    values = getattr(settings, "VOYAGR", None) or {}
    if not isinstance(values, Mapping):
        raise ConfigurationError(
            f"settings.VOYAGR={values!r}: give a dict of variable names to values"
        )
    merged = dict(os.environ if environ is None else environ)
    for name, value in values.items():
        merged[str(name)] = _text(str(name), value)
    return merged


def _text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple | frozenset | set):
        if all(isinstance(item, str) for item in value):
            return ",".join(value)
    raise ConfigurationError(
        f"settings.VOYAGR[{name!r}]={value!r}: use a string, a bool, a number or a list of strings"
    )


def with_django_defaults(settings: Settings) -> Settings:
    """``settings`` with the CSRF cookie left JS-readable unless ``CSRF_COOKIE_HTTPONLY``."""
    from django.conf import settings as django_settings

    if getattr(django_settings, "CSRF_COOKIE_HTTPONLY", False):
        return settings
    name = getattr(django_settings, "CSRF_COOKIE_NAME", "csrftoken")
    exempt = settings.secure_cookies_httponly_exempt
    if name in exempt:
        return settings
    from ..layers._cookies import cookie_names

    cookie_names([name], "CSRF_COOKIE_NAME")
    return settings.replace(secure_cookies_httponly_exempt=(*exempt, name))


def settings_from_django(environ: Mapping[str, str] | None = None) -> Settings:
    """The voyagr :class:`~voyagr_wsgi.Settings` of this Django project (see the module)."""
    return with_django_defaults(Settings.from_env(voyagr_environ(environ)))
