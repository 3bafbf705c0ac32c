"""gunicorn configuration of the demo: `make demo` runs it."""

import os

bind = f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
wsgi_app = "app:application"
pythonpath = os.path.dirname(os.path.abspath(__file__))
accesslog = None
graceful_timeout = 10
# voyagr's ProxyTrust is the one place that decides which forwarded headers to believe;
# gunicorn by default believes X-Forwarded-Proto from 127.0.0.1, so turn that off here.
forwarded_allow_ips = ""

try:  # the hooks that start the services in one worker and merge metrics
    from voyagr_wsgi.gunicorn import *  # noqa: F403
except ImportError:  # pragma: no cover - before the gunicorn integration landed

    def post_worker_init(worker):  # type: ignore[no-untyped-def]
        worker.wsgi.start()

    def worker_exit(server, worker):  # type: ignore[no-untyped-def]
        worker.wsgi.stop(timeout=5)
