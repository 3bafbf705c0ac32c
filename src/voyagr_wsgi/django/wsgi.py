"""``wrap``: the voyagr stack around Django's WSGI handler.

``wrap(get_wsgi_application())`` is ``compose(handler, settings)`` (settings from
``settings.VOYAGR`` over the environment, :mod:`.conf`) plus what the layers cannot know
about Django, at no cost to a request that needs none of it:

- view exceptions reach the Metrics layer (``got_request_exception``, as the app's
  ``ready()`` connects it, so this works without ``INSTALLED_APPS`` too);
- the stack's rate-limit store is handed to the request (``environ["voyagr.ratelimit_store"]``)
  for ``@voyagr_limit``;
- when some view is marked ``@voyagr_exempt`` or ``@voyagr_csrf_exempt`` (found by walking the
  URLconf once, here), each request's path is resolved with Django's resolver before the
  stack runs, and a switch in front of the RateLimit / CrossOriginProtection layer passes a
  marked view's requests straight to the layer inside it;
- a request the stack answered itself (a 429, a 403) is labelled with the route its path
  resolves to, so the metrics count it under ``/login/`` and not ``__unmatched__``. (Without
  ``VoyagrMiddleware`` in ``MIDDLEWARE`` every request is labelled this way, at the price of
  a second resolution per request.)

The exemptions follow ``ROOT_URLCONF``: a middleware that picks a URLconf per request
(``request.urlconf``, django-hosts) runs after the layers, so its views' marks are not seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from .._layer import Layer, direct_call
from .._wsgi import Environ, StartResponse, WSGIApplication
from ..compose import Stack, compose
from ..metrics.routes import django_route
from ..request import ROUTE
from ..settings import Settings
from .decorators import STORE
from .urls import CSRF_EXEMPT, MARKS, RATELIMIT_EXEMPT, SEEN, marked_views, resolve

__all__ = ["get_wsgi_application", "wrap"]

#: the layer each mark lets a view skip, by the flag the mark sets
_SKIPS = {RATELIMIT_EXEMPT: "RateLimit", CSRF_EXEMPT: "CrossOriginProtection"}


def wrap(handler: WSGIApplication, settings: Settings | None = None) -> Stack:
    """The stack around Django's WSGI ``handler``; ``settings`` default: the project's."""
    if settings is None:
        from .conf import settings_from_django

        settings = settings_from_django()
    stack = compose(handler, settings)
    from django.core.signals import got_request_exception

    from .apps import record_exception

    # also connected by the app's ready(); once either way (same dispatch_uid)
    got_request_exception.connect(record_exception, dispatch_uid="voyagr_wsgi.exc_info")
    flags = marked_views()
    _switch_layers(stack, {_SKIPS[flag]: flag for flag in flags})
    inner = stack.app
    store = stack.components.get("ratelimit")
    resolving = bool(flags)

    def django_front(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ[STORE] = store
        if resolving:
            from django.core.handlers.wsgi import get_path_info

            match = resolve(get_path_info(environ))
            if match is not None:
                for mark, flag in MARKS.items():
                    if getattr(match.func, mark, False):
                        environ[flag] = True
                label = django_route(match)
                if label is not None:
                    environ[ROUTE] = label
        body = inner(environ, start_response)
        if SEEN not in environ and not environ.get(ROUTE):  # the stack answered itself
            from django.core.handlers.wsgi import get_path_info

            label = django_route(resolve(get_path_info(environ)))
            if label is not None:
                environ[ROUTE] = label  # read by the Metrics layer when the body closes
        return body

    stack.app = django_front
    stack._next = django_front
    return stack


def _switch_layers(stack: Stack, skips: dict[str, str]) -> None:
    """Put a switch in front of each layer named in ``skips`` (name -> environ flag): a
    request carrying the flag goes to the app inside that layer. The layers outside it are
    bound again (``Layer.bind``: copies, nothing re-validated) around the switch."""
    if not skips:
        return
    layers = list(stack.layers)
    below: Any = None
    changed = False
    for index in range(len(layers) - 1, -1, -1):
        layer = layers[index]
        if changed and isinstance(layer, Layer):
            layer = layers[index] = layer.bind(below)
        flag = skips.get(type(layer).__name__)
        if flag is not None and isinstance(layer, Layer):
            below = _switch(flag, direct_call(cast(WSGIApplication, layer)), layer._next)
            changed = True
        else:
            below = layer
    stack.layers = tuple(layers)
    stack.app = below
    stack._next = direct_call(below)


def _switch(flag: str, run: WSGIApplication, skip: WSGIApplication) -> WSGIApplication:
    def switch(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if flag in environ:
            return skip(environ, start_response)
        return run(environ, start_response)

    return switch


def get_wsgi_application(settings: Settings | None = None) -> Stack:
    """``wrap(django.core.wsgi.get_wsgi_application(), settings)``: for ``wsgi.py``."""
    from django.core.wsgi import get_wsgi_application as django_application

    return wrap(django_application(), settings)
