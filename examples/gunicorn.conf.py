"""An example gunicorn configuration for a voyagr_wsgi stack.

Run it with ``gunicorn -c examples/gunicorn.conf.py`` (``wsgi_app`` below names the app) or
``gunicorn -c examples/gunicorn.conf.py yourmodule:application``. Command-line options win
over the values set here. See docs/deployment.md for the whole deployment.
"""

import os

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

# Logs to stdout/stderr, where a PaaS collects them: the star import above gives gunicorn a
# logconfig_dict that prints voyagr_wsgi's access log (one line per request, with route,
# status, size, duration, client IP and request id as record fields; ACCESS_LOG_ENABLED) on
# stdout and its service lines (which worker runs the backups and alerts, each backup, each
# alert) on stderr, with timestamps. gunicorn's own access log would repeat the former.
# Assign logconfig_dict after the import to log your own way.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")

# gunicorn itself rewrites wsgi.url_scheme from X-Forwarded-Proto for peers listed here
# (gunicorn's default: loopback). voyagr_wsgi's ProxyTrust (TRUSTED_PROXIES) is the one place
# that decides whom to trust, so gunicorn trusts nobody unless told to.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")
