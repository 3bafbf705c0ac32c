"""An example app for examples/gunicorn.conf.py: any WSGI app, wrapped by voyagr_wsgi.

Replace ``app`` with your Flask/Django/Falcon app (``flask_app.wsgi_app`` or
``django.core.wsgi.get_wsgi_application()``); everything the environment asks for
(``Settings.from_env()``, see .env.production) is composed around it. Nothing starts here:
gunicorn's ``post_worker_init`` hook starts the services in each worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from voyagr_wsgi import Settings, compose


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = b"hello from voyagr_wsgi\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = compose(app, Settings.from_env())
