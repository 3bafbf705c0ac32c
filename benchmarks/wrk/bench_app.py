"""The same app as bare_app.py under ``compose(app, Settings.from_env())`` (run.py sets the env)."""

from __future__ import annotations

from bare_app import application as bare

from voyagr_wsgi import Settings, compose

application = compose(bare, Settings.from_env())
