"""A small Flask app (one JSON route), bare: what a real app costs gunicorn per request."""

from __future__ import annotations

from flask import Flask, jsonify

flask_app = Flask(__name__)


@flask_app.get("/")
def index():  # type: ignore[no-untyped-def]
    return jsonify(status="ok", routes=[])


application = flask_app
