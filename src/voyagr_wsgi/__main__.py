"""``python -m voyagr_wsgi``: the ``voyagr-wsgi`` command (see :mod:`voyagr_wsgi.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
