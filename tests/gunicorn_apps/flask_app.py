"""A Flask app built with ``voyagr_wsgi.flask.Voyagr``, shared by the in-process tests
(``make_app``) and gunicorn (``gunicorn 'flask_app:create_app()'``, settings from the
environment)."""

from __future__ import annotations

from typing import Any

import flask

from voyagr_wsgi import Settings
from voyagr_wsgi.flask import Voyagr


def make_app(settings: Settings | None = None, **config: Any) -> tuple[flask.Flask, Voyagr]:
    """``/login`` (5/minute of its own), ``/stacked`` (2/second;3/hour), ``/assets/<name>``
    (exempt from the global limit), ``/hooks/<int:id>`` (CSRF exempt), ``/form`` (not),
    ``/private/<int:id>`` (answered 401 by a ``before_request`` hook without a token),
    ``/boom`` (raises KeyError), ``/users/<int:user_id>``."""
    app = flask.Flask("voyagr_flask_test")
    app.config.update(config)
    voyagr = Voyagr(app, settings=settings)

    @app.before_request
    def require_token() -> Any:
        if flask.request.path.startswith("/private/"):
            if flask.request.headers.get("Authorization") != "Bearer ok":
                return "unauthorized", 401
        return None

    @app.post("/login")
    @voyagr.limit("5/minute")
    def login() -> str:
        return "logged in"

    @app.get("/stacked")
    @voyagr.limit("2/second;3 per hour")
    def stacked() -> str:
        return "stacked"

    @voyagr.exempt
    @app.get("/assets/<name>")  # marks work above @app.route too
    def asset(name: str) -> str:
        return name

    @app.post("/hooks/<int:hook_id>")
    @voyagr.csrf_exempt
    def hook(hook_id: int) -> str:
        return "received"

    @app.post("/form")
    def form() -> str:
        return "posted"

    @app.get("/private/<int:item>")
    def private(item: int) -> str:
        return str(item)

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> str:
        return str(user_id)

    @app.get("/boom")
    def boom() -> str:
        raise KeyError("missing")

    return app, voyagr


def create_app() -> flask.Flask:
    """The app gunicorn serves: settings from the environment."""
    return make_app()[0]
