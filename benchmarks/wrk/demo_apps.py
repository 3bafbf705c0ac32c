"""The repo's demo (a JSON API over SQLite, demo/app.py) bare and composed, for run.py:
``GET /api/routes`` reads 20 saved routes from SQLite and answers them as JSON.

``bare`` is the demo's WSGI app alone, ``stack`` the same app under ``compose(app,
Settings.from_env())`` (demo/app.py's ``application``). run.py points ``DATABASE_PATH`` at its
temporary directory; the rows are added once, at import, when the table is empty.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from demo.app import application as stack
from demo.app import db, demo_app

__all__ = ["bare", "stack"]

bare = demo_app

_conn = db()
if _conn.execute("SELECT COUNT(*) FROM routes").fetchone()[0] == 0:
    _conn.executemany(
        "INSERT INTO routes (origin, destination, distance_km, engine) VALUES (?, ?, ?, ?)",
        [(f"City {i}", f"City {i + 1}", 10.0 + i, "osrm") for i in range(20)],
    )
    _conn.commit()
