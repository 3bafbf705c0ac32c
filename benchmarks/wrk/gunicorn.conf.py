"""gunicorn config for benchmarks/wrk/run.py: the voyagr hooks, no access log (both variants)."""

from voyagr_wsgi.gunicorn import *  # noqa: F403

accesslog = None
loglevel = "warning"
graceful_timeout = 10
