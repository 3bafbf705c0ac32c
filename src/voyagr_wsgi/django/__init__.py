"""Django integration: the voyagr stack around a Django project, the Django way.

Install with the ``django`` extra (``pip install 'voyagr-wsgi[django]'``); without Django,
importing this module raises :class:`~voyagr_wsgi.ConfigurationError` naming the extra.

``wsgi.py`` (the layers wrap Django's WSGI handler: ``compose(handler, settings)``)::

    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

    from voyagr_wsgi.django import get_wsgi_application

    application = get_wsgi_application()
    # the same as: voyagr_wsgi.django.wrap(django.core.wsgi.get_wsgi_application())

``settings.py``::

    INSTALLED_APPS = [
        ...,
        "voyagr_wsgi.django",          # deploy checks, view exceptions into the metrics
    ]
    MIDDLEWARE = [
        "voyagr_wsgi.django.middleware.VoyagrMiddleware",   # first: route labels
        "django.middleware.security.SecurityMiddleware",
        ...,
    ]
    VOYAGR = {                          # the environment variable names; over the environment
        "ALLOWED_HOSTS": ALLOWED_HOSTS,
        "TRUSTED_PROXIES": "10.0.0.0/8",
        "RATE_LIMIT_REQUESTS": 100,
    }

``views.py``::

    from django.http import HttpResponse
    from django.views.decorators.csrf import csrf_exempt
    from voyagr_wsgi.django import voyagr_csrf_exempt, voyagr_exempt, voyagr_limit

    @voyagr_limit("5/minute")              # own budget per client; "10/1s;100/1h" stacks
    def login(request): ...

    @voyagr_exempt                          # not counted by the global RATE_LIMIT_* budget
    def health_widget(request): ...

    @csrf_exempt                            # Django's CsrfViewMiddleware
    @voyagr_csrf_exempt                     # voyagr's CrossOriginProtection
    def stripe_webhook(request): ...

Serve it with gunicorn as any WSGI app (``gunicorn mysite.wsgi:application``; the
``voyagr_wsgi.gunicorn`` config starts the stack's background services).

What each piece does:

- **Settings** (:mod:`.conf`): ``settings.VOYAGR`` (the names of ``.env.production``) over
  the environment; Python values allowed (``True``, ``100``, lists). The CSRF cookie
  (``CSRF_COOKIE_NAME``) is added to ``SECURE_COOKIES_HTTPONLY_EXEMPT`` unless
  ``CSRF_COOKIE_HTTPONLY = True``: SecurityHeaders adds ``HttpOnly`` to every other cookie,
  but Django's AJAX recipe reads ``csrftoken`` from JavaScript.
- **Route labels** (:mod:`.middleware`): the resolver's route (``/users/<int:id>/``) for every
  request: views, requests a middleware answered before the view, a view's ``Http404``, the
  stack's own 429s and 403s (resolved by :func:`wrap`); a path that resolves nowhere is
  ``__unmatched__``. Never the raw path.
- **View exceptions** (:mod:`.apps`): Django answers a view's exception with its 500 page, so
  the Metrics layer never sees it raised; the app's ``got_request_exception`` receiver puts it
  in ``environ["voyagr.exc_info"]`` and the Metrics layer records it by type, with its
  traceback, in "errors by type" and the recent-error list.
- **Per-view decorators** (:mod:`.decorators`): ``voyagr_limit`` (429 with ``Retry-After``,
  RateLimit fields and a problem+json body, in the stack's store), ``voyagr_exempt`` (skips
  the global RateLimit layer), ``voyagr_csrf_exempt`` (skips CrossOriginProtection).
  The layers run before Django's URL resolver: when a view is marked, :func:`wrap` resolves
  each request's path with Django's resolver (``ROOT_URLCONF``) before the stack runs.
- **Deploy checks** (:mod:`.checks`): ``manage.py check --deploy`` shows ``voyagr-wsgi
  check``'s findings with their ids (``voyagr.W001``...); ``--tag voyagr`` for those alone.

Public names: :func:`wrap`, :func:`get_wsgi_application`, :func:`settings_from_django`,
:func:`voyagr_limit`, :func:`voyagr_exempt`, :func:`voyagr_csrf_exempt`,
``voyagr_wsgi.django.middleware.VoyagrMiddleware``, ``voyagr_wsgi.django.apps.VoyagrConfig``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._extras import require
from .._lazy import lazy

require("django", "voyagr_wsgi.django", extra="django")

if TYPE_CHECKING:
    from .conf import settings_from_django
    from .decorators import voyagr_csrf_exempt, voyagr_exempt, voyagr_limit
    from .wsgi import get_wsgi_application, wrap

__all__ = [
    "get_wsgi_application",
    "settings_from_django",
    "voyagr_csrf_exempt",
    "voyagr_exempt",
    "voyagr_limit",
    "wrap",
]

_WHERE = {
    "get_wsgi_application": ".wsgi",
    "wrap": ".wsgi",
    "settings_from_django": ".conf",
    "voyagr_csrf_exempt": ".decorators",
    "voyagr_exempt": ".decorators",
    "voyagr_limit": ".decorators",
}


__getattr__, __dir__ = lazy(__name__, _WHERE)
