"""A Flask app with a ``/login`` view, in ``compose(app, Settings.from_env())``.

``/login`` (GET and POST) answers ``login <PATH_INFO as delivered>``, so a test sees which
spellings of the path reach the view; every other path is Flask's own 404.
"""

from __future__ import annotations

from flask import Flask, request

from voyagr_wsgi import Settings, compose

app = Flask(__name__)


@app.route("/login", methods=["GET", "POST"])
def login() -> str:
    return "login " + request.environ["PATH_INFO"]


application = compose(app.wsgi_app, Settings.from_env())
