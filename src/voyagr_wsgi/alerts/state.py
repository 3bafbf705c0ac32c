"""Small JSON files that let every worker see what the one alerting process knows.

Under gunicorn the evaluator and the sender run in one elected process, but the admin
endpoint, the metrics scrape and health may be answered by any worker. The elected process
writes ``<state_dir>/alerts-state.json`` (active alerts and channel counters) after every
evaluation; any process may write ``<state_dir>/alerts-mute.json`` (a maintenance mute),
which the evaluator reads before every evaluation. Writes go to a temp file and are renamed
into place, so a reader never sees half a document.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .._jsonfile import write_json

__all__ = ["read_json", "write_json"]

log = logging.getLogger("voyagr_wsgi.alerts")


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, type(exc).__name__)
        return None
    return doc if isinstance(doc, dict) else None
