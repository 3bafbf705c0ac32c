"""An example gunicorn configuration for a voyagr_wsgi stack.

Run it with ``gunicorn -c examples/gunicorn.conf.py`` (``wsgi_app`` below names the app) or
``gunicorn -c examples/gunicorn.conf.py yourmodule:application``. Command-line options win
over the values set here. See docs/deployment.md for the whole deployment.
"""

import logging
import os
import sys

from voyagr_wsgi.gunicorn import *  # noqa: F403  hooks: services in one worker, merged metrics

# The app: application = compose(app, Settings.from_env()) in examples/app.py.
wsgi_app = "app:application"
pythonpath = os.path.dirname(os.path.abspath(__file__))

# A PaaS (Railway, Heroku, Render) gives the port in $PORT and routes to it from its private
# network; locally, stay on loopback.
port = os.environ.get("PORT")
bind = [f"0.0.0.0:{port}"] if port else ["127.0.0.1:8000"]

# gunicorn also reads WEB_CONCURRENCY by itself; 2-4 per core is the usual range. With more
# than one worker, set RATE_LIMIT_STORAGE=redis://... so rate limits are shared.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# SIGTERM -> workers finish requests, then worker_exit stops the services (alert queues
# flushed) within graceful_timeout minus a margin; after it the master SIGKILLs.
graceful_timeout = 30
timeout = 30
keepalive = 5  # seconds; keep it below the idle timeout of the router in front

# Recycle workers now and then against slow leaks; the jitter keeps them from restarting
# together (each restart also moves the singleton services if that worker held them).
max_requests = 10_000
max_requests_jitter = 1_000

# Logs to stdout/stderr, where a PaaS collects them. voyagr_wsgi's JSON access log (one line
# per request, with route, duration, client IP and request id; ACCESS_LOG_ENABLED) replaces
# gunicorn's, and its service logs (which worker runs the backups and alerts, each backup,
# each alert) go to stderr; without a handler they would be dropped.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")

_voyagr_log = logging.getLogger("voyagr_wsgi")
if not _voyagr_log.handlers:  # the file is read again on a HUP reload
    _stderr = logging.StreamHandler(sys.stderr)
    _stderr.setFormatter(
        logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    )
    _voyagr_log.addHandler(_stderr)
    _voyagr_log.setLevel(loglevel.upper())
    _voyagr_log.propagate = False
    _access_log = logging.getLogger("voyagr_wsgi.access")
    _stdout = logging.StreamHandler(sys.stdout)
    _stdout.setFormatter(logging.Formatter("%(message)s"))
    _access_log.addHandler(_stdout)
    _access_log.setLevel(logging.INFO)
    _access_log.propagate = False

# gunicorn itself rewrites wsgi.url_scheme from X-Forwarded-Proto for peers listed here
# (gunicorn's default: loopback). voyagr_wsgi's ProxyTrust (TRUSTED_PROXIES) is the one place
# that decides whom to trust, so gunicorn trusts nobody unless told to.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")
