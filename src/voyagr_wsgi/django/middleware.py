"""``VoyagrMiddleware``: route labels for every request that reaches Django.

Put it first in ``MIDDLEWARE``, so it sees what every other middleware answers::

    MIDDLEWARE = ["voyagr_wsgi.django.middleware.VoyagrMiddleware", ...]

- before the view: ``environ["voyagr.route"]`` from ``request.resolver_match.route``
  (``/users/<int:id>/``), as :class:`~voyagr_wsgi.metrics.routes.DjangoRouteMiddleware`;
- after the response, when no view ran (a middleware answered first, an auth 401 say): the
  route the request's path resolves to (``request.urlconf`` respected), so the answer is
  counted under its route; a path that resolves nowhere stays ``__unmatched__``;
- it notes that Django saw the request (``environ["voyagr.django.seen"]``), so
  :func:`voyagr_wsgi.django.wrap` resolves only requests the stack answered itself (429, 403).
"""

from __future__ import annotations

from typing import Any

from ..metrics.routes import DjangoRouteMiddleware, django_route
from ..request import ROUTE
from .urls import SEEN, resolve

__all__ = ["VoyagrMiddleware"]


class VoyagrMiddleware(DjangoRouteMiddleware):
    """Route labels for every request, including those a middleware answers early."""

    def __call__(self, request: Any) -> Any:
        meta = request.META
        meta[SEEN] = True
        response = self.get_response(request)
        if not meta.get(ROUTE):
            match = getattr(request, "resolver_match", None)
            if match is None and getattr(response, "status_code", 0) != 404:
                match = resolve(request.path_info, getattr(request, "urlconf", None))
            label = django_route(match)
            if label is not None:
                meta[ROUTE] = label
        return response
