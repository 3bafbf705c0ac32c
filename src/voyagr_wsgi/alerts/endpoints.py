"""The alert admin routes under ``/api/production/``: ``GET alerts``, ``POST alerts/mute``,
``DELETE alerts/mute`` (behind the admin token, like every admin route)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..admin import AdminRoute, Response, json_body

if TYPE_CHECKING:
    from .._wsgi import Environ
    from .evaluator import AlertService

__all__ = ["admin_routes"]


def admin_routes(service: AlertService) -> list[AdminRoute]:
    """``GET alerts``, ``POST alerts/mute``, ``DELETE alerts/mute``."""

    def show(environ: Environ, params: Mapping[str, str]) -> Response:
        return json_body("200 OK", service.snapshot())

    def mute(environ: Environ, params: Mapping[str, str]) -> Response:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= 4096:
            return json_body("400 Bad Request", {"error": "send a JSON body up to 4 KiB"})
        try:
            doc: Any = json.loads(environ["wsgi.input"].read(length))
            seconds = float(doc["seconds"])
            reason = str(doc.get("reason", ""))
        except (ValueError, KeyError, TypeError):
            return json_body("400 Bad Request", {"error": 'expected {"seconds": N, "reason": ""}'})
        if not 0 < seconds <= 7 * 86400:
            return json_body("400 Bad Request", {"error": "seconds must be in (0, 604800]"})
        service.mute(seconds, reason)
        return json_body("200 OK", service.snapshot())

    def unmute(environ: Environ, params: Mapping[str, str]) -> Response:
        service.unmute()
        return json_body("200 OK", service.snapshot())

    return [
        AdminRoute("GET", "alerts", show),
        AdminRoute("POST", "alerts/mute", mute),
        AdminRoute("DELETE", "alerts/mute", unmute),
    ]
