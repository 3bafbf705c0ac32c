"""The demo: a small route-planning JSON API over SQLite, wrapped by voyagr_wsgi.

Endpoints (the app's own):

- ``GET /``                  a short HTML page with links
- ``GET /api/routes``        saved routes
- ``POST /api/routes``       plan a route: ``{"from": "Paris", "to": "Lyon"}``
- ``GET /api/routes/<id>``   one route

Everything under ``/api/production/`` comes from voyagr_wsgi (health, metrics, Prometheus,
dashboard, backups). ``application`` is what gunicorn serves.

Each write is one transaction (``with conn:`` commits, or rolls back on any error), so a
failed write never leaves the worker's connection inside an open transaction that would serve
stale reads and fail every later write; a locked database (``SQLITE_BUSY`` after
``DEMO_DB_TIMEOUT_S``, 5 s) answers ``503`` with ``Retry-After`` instead of a 500.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import threading
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from voyagr_wsgi import Settings, compose
from voyagr_wsgi.metrics import connect, lru_cache_stats, track_upstream, use_registry

DATABASE_PATH = os.environ.get("DATABASE_PATH", "demo/var/voyagr.db")
DB_TIMEOUT_S = float(os.environ.get("DEMO_DB_TIMEOUT_S", "5"))  # waiting for a lock

url_map = Map(
    [
        Rule("/", endpoint="index", methods=["GET"]),
        Rule("/api/routes", endpoint="list_routes", methods=["GET"]),
        Rule("/api/routes", endpoint="plan_route", methods=["POST"]),
        Rule("/api/routes/<int:route_id>", endpoint="get_route", methods=["GET"]),
    ]
)

_local = threading.local()

INDEX = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>voyagr demo</title>
</head><body><h1>voyagr_wsgi demo</h1><ul>
<li><a href="/api/routes">/api/routes</a>: saved routes (POST {"from","to"} to plan one)</li>
<li><a href="/api/production/health">/api/production/health</a>: health</li>
<li><a href="/api/production/metrics">/api/production/metrics</a>: metrics JSON</li>
<li><a href="/api/production/prometheus">/api/production/prometheus</a>: Prometheus</li>
<li><a href="/api/production/dashboard">/api/production/dashboard</a>: live dashboard</li>
<li><a href="/api/production/backups">/api/production/backups</a>: backups</li>
</ul></body></html>"""


def db() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        os.makedirs(os.path.dirname(os.path.abspath(DATABASE_PATH)), exist_ok=True)
        conn = connect(DATABASE_PATH, timeout=DB_TIMEOUT_S)  # statements timed (slow queries)
        conn.execute("PRAGMA journal_mode=WAL")
        with conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS routes (id INTEGER PRIMARY KEY, origin TEXT NOT "
                "NULL, destination TEXT NOT NULL, distance_km REAL NOT NULL, engine TEXT NOT NULL)"
            )
        _local.conn = conn
    return conn


@functools.lru_cache(maxsize=256)
def _distance(origin: str, destination: str) -> float:
    """A stand-in for a routing engine (OSRM, GraphHopper...): tracked as an upstream."""
    with track_upstream("osrm"):
        digest = hashlib.sha256(f"{origin}->{destination}".encode()).digest()
        return round(5 + int.from_bytes(digest[:2], "big") / 65535 * 995, 1)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def index(request: Request) -> Response:
    return Response(INDEX, mimetype="text/html")


def list_routes(request: Request) -> Response:
    rows = db().execute(
        "SELECT id, origin, destination, distance_km, engine FROM routes ORDER BY id DESC LIMIT 50"
    )
    keys = ("id", "from", "to", "distance_km", "engine")
    return _json([dict(zip(keys, row, strict=True)) for row in rows])


def plan_route(request: Request) -> Response:
    data = request.get_json(silent=True) or {}
    origin, destination = data.get("from"), data.get("to")
    if not isinstance(origin, str) or not isinstance(destination, str):
        return _json({"error": 'send JSON {"from": "...", "to": "..."}'}, 400)
    distance = _distance(origin, destination)
    conn = db()
    with conn:  # one transaction: committed, or rolled back if anything below raises
        cur = conn.execute(
            "INSERT INTO routes (origin, destination, distance_km, engine) VALUES (?, ?, ?, ?)",
            (origin[:200], destination[:200], distance, "osrm"),
        )
    return _json(
        {"id": cur.lastrowid, "from": origin, "to": destination, "distance_km": distance}, 201
    )


def get_route(request: Request, route_id: int) -> Response:
    row = (
        db()
        .execute(
            "SELECT id, origin, destination, distance_km, engine FROM routes WHERE id = ?",
            (route_id,),
        )
        .fetchone()
    )
    if row is None:
        raise NotFound()
    return _json(dict(zip(("id", "from", "to", "distance_km", "engine"), row, strict=True)))


VIEWS = {f.__name__: f for f in (index, list_routes, plan_route, get_route)}


def demo_app(environ: dict[str, Any], start_response: Any) -> Any:
    request = Request(environ)
    adapter = url_map.bind_to_environ(environ)
    try:
        rule, args = adapter.match(return_rule=True)
        environ["voyagr.route"] = rule.rule
        response = VIEWS[rule.endpoint](request, **args)
    except HTTPException as exc:
        response = exc.get_response(environ)
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        response = _json({"error": "the database is busy; retry shortly"}, 503)
        response.headers["Retry-After"] = "1"
    return response(environ, start_response)


application = compose(demo_app, Settings.from_env())
with use_registry(application.metrics):  # outside a request: name the registry
    db()  # the demo creates its schema when gunicorn imports it, before the first backup
lru_cache_stats("routes", _distance, registry=application.metrics)  # the hit rate
