"""`make demo`: serve the demo under gunicorn with every layer and service on embedded defaults.

SQLite in demo/var/, a local backup folder, in-memory rate limits, alerts to the log. Any
variable already in the environment wins (see .env.production for all of them).
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VAR = os.path.join(HERE, "var")

DEFAULTS = {
    "PORT": "8000",
    "DATABASE_PATH": os.path.join(VAR, "voyagr.db"),
    "BACKUP_ENABLED": "true",
    "BACKUP_DIR": os.path.join(VAR, "backups"),
    "BACKUP_INTERVAL_HOURS": "24",
    "VOYAGR_STATE_DIR": os.path.join(VAR, "state"),
    "RATE_LIMIT_REQUESTS": "100",
    "RATE_LIMIT_WINDOW_SECONDS": "60",
    "ENFORCE_HTTPS": "true",  # loopback hosts are never redirected, so the demo stays on http
    "ALLOWED_HOSTS": "127.0.0.1,localhost,[::1]",
    "WEB_CONCURRENCY": "2",
}


def main() -> None:
    env = dict(os.environ)
    for key, value in DEFAULTS.items():
        env.setdefault(key, value)
    os.makedirs(VAR, exist_ok=True)
    port = env["PORT"]
    print(
        f"voyagr_wsgi demo on http://127.0.0.1:{port}/\n"
        f"  app:        http://127.0.0.1:{port}/api/routes\n"
        f"  health:     http://127.0.0.1:{port}/api/production/health\n"
        f"  metrics:    http://127.0.0.1:{port}/api/production/metrics\n"
        f"  prometheus: http://127.0.0.1:{port}/api/production/prometheus\n"
        f"  dashboard:  http://127.0.0.1:{port}/api/production/dashboard\n"
        f"  backups:    http://127.0.0.1:{port}/api/production/backups\n"
        "  (while VOYAGR_ADMIN_TOKEN is unset, read-only admin endpoints answer loopback clients\n"
        "   and state changes such as backup/create are refused: set it to use them)\n"
        "Ctrl-C to stop.",
        flush=True,
    )
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    os.chdir(HERE)
    argv = [gunicorn, "-c", os.path.join(HERE, "gunicorn.conf.py")]
    os.execve(gunicorn, argv, env)  # noqa: S606 - this process becomes gunicorn


if __name__ == "__main__":
    main()
