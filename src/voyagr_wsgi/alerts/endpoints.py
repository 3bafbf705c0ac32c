"""The alert admin routes under ``/api/production/``: ``GET alerts``, ``POST alerts/mute``,
``DELETE alerts/mute`` (behind the admin token, like every admin route).

``POST alerts/mute`` takes ``{"seconds": 3600, "reason": "migration"}`` (JSON, at most 4 KiB;
``seconds`` in (0, 604800], ``reason`` up to 500 characters); anything else is a problem+json
400, 413, 415 or 422, never a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..admin import AdminRoute
from ..problem import json_response
from ..request_body import number, read_json, text

if TYPE_CHECKING:
    from .._wsgi import Environ
    from ..problem import Response
    from .evaluator import AlertService

__all__ = ["admin_routes"]

_MAX_MUTE_S = 7 * 86400  # a week


def admin_routes(service: AlertService) -> list[AdminRoute]:
    """``GET alerts``, ``POST alerts/mute``, ``DELETE alerts/mute``."""

    def show(environ: Environ, params: Mapping[str, str]) -> Response:
        return json_response("200 OK", service.snapshot())

    def mute(environ: Environ, params: Mapping[str, str]) -> Response:
        doc = read_json(environ, max_bytes=4096)
        seconds = number(doc, "seconds", minimum=0, maximum=_MAX_MUTE_S)
        service.mute(seconds, text(doc, "reason", max_length=500))
        return json_response("200 OK", service.snapshot())

    def unmute(environ: Environ, params: Mapping[str, str]) -> Response:
        service.unmute()
        return json_response("200 OK", service.snapshot())

    return [
        AdminRoute("GET", "alerts", show),
        AdminRoute("POST", "alerts/mute", mute),
        AdminRoute("DELETE", "alerts/mute", unmute),
    ]
