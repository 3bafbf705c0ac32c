"""The demo app is exemplary: a failed write rolls back, so the worker's connection neither
serves stale reads nor fails every later write; a locked database is a 503, not a 500."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, sqlite3, sys
sys.path.insert(0, {demo!r})
import app
from werkzeug.test import Client

client = Client(app.demo_app)
seen = []
def post(origin):
    r = client.post("/api/routes", json={{"from": origin, "to": "Lyon"}})
    seen.append(r.status_code)
    return r
post("Paris")
other = sqlite3.connect({db!r}, isolation_level=None)
other.execute("BEGIN EXCLUSIVE")
other.execute(
    "INSERT INTO routes (origin, destination, distance_km, engine) VALUES ('Nice','Lyon',1,'x')"
)
busy = post("Lille")
seen.append(busy.headers.get("Retry-After"))
other.execute("COMMIT")
post("Brest")
post("Dijon")
origins = [r["from"] for r in client.get("/api/routes").get_json()]
print(json.dumps({{"statuses": seen, "origins": origins}}))
"""


def test_a_write_that_meets_a_locked_database_rolls_back_and_the_worker_recovers(
    tmp_path: Path,
) -> None:
    db = tmp_path / "demo.db"
    env = {
        **os.environ,
        "DATABASE_PATH": str(db),
        "DEMO_DB_TIMEOUT_S": "0.05",
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "BACKUP_DIR": str(tmp_path / "backups"),
    }
    code = SCRIPT.format(demo=str(ROOT / "demo"), db=str(db))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["statuses"] == [201, 503, "1", 201, 201]
    assert doc["origins"] == ["Dijon", "Brest", "Nice", "Paris"]  # fresh: the other writer's row
