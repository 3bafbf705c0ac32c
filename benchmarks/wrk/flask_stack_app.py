"""flask_app.py under ``compose(app, Settings.from_env())``, as the README's Flask quick start."""

from __future__ import annotations

from flask_app import flask_app

from voyagr_wsgi import Settings, compose
from voyagr_wsgi.metrics.routes import flask_route

flask_route(flask_app)
flask_app.wsgi_app = compose(flask_app.wsgi_app, Settings.from_env())  # type: ignore[method-assign]
application = flask_app
