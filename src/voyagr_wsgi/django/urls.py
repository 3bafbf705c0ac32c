"""Resolving a path the way Django will, before Django runs, and the view marks.

The stack's layers (RateLimit, CrossOriginProtection) run before Django's URL resolver, so
the per-view exemptions are found by resolving the request's path with Django's own resolver
(``ROOT_URLCONF``; a ``request.urlconf`` set by a middleware is not known yet) and reading the
marks the decorators leave on the view function.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CSRF_EXEMPT", "RATELIMIT_EXEMPT", "SEEN", "marked_views", "resolve"]

#: environ flags set before the stack runs, for a request whose view is marked
RATELIMIT_EXEMPT = "voyagr.django.ratelimit_exempt"
CSRF_EXEMPT = "voyagr.django.csrf_exempt"
#: set by VoyagrMiddleware: Django saw the request (the route is labelled there)
SEEN = "voyagr.django.seen"
#: the view attributes the decorators set (kept through functools.wraps)
MARKS = {"voyagr_exempt": RATELIMIT_EXEMPT, "voyagr_csrf_exempt": CSRF_EXEMPT}


def resolve(path_info: str, urlconf: Any = None) -> Any:
    """Django's ``ResolverMatch`` for ``path_info``, or None when nothing matches."""
    from django.urls import Resolver404, get_resolver

    try:
        return get_resolver(urlconf).resolve(path_info or "/")
    except Resolver404:
        return None


def marked_views(urlconf: Any = None) -> set[str]:
    """The environ flags some view of the URLconf is marked with (loads the URLconf)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found: set[str] = set()

    def walk(patterns: Any) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns)
            elif isinstance(entry, URLPattern):
                for mark, flag in MARKS.items():
                    if getattr(entry.callback, mark, False):
                        found.add(flag)

    walk(get_resolver(urlconf).url_patterns)
    return found
