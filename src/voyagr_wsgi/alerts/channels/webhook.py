"""Generic webhook: the Alertmanager webhook v4 body, optionally HMAC-signed.

``ALERT_WEBHOOK_ENABLED=true``, ``ALERT_WEBHOOK_URL=https://...`` (``https://user:pass@...``
sends basic auth) and, optionally, ``ALERT_WEBHOOK_SECRET`` and ``ALERT_WEBHOOK_HEADERS`` (a
JSON object of extra headers, e.g. ``{"Authorization": "Bearer ..."}``). The body is the
documented Alertmanager ``webhook_config`` payload (``version: "4"``, ``groupKey``, ``status``,
``alerts[]``...), so the many existing Alertmanager webhook receivers consume voyagr alerts
unchanged. With a secret, the header ``X-Voyagr-Signature-256: sha256=<hex>`` carries HMAC-
SHA256(secret, raw body), the scheme GitHub uses for ``X-Hub-Signature-256``; verify it with
:func:`verify_signature` (constant time) before trusting the body::

    ok = verify_signature(secret, request_body, request.headers["X-Voyagr-Signature-256"])
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
from collections.abc import Mapping
from typing import Any

from ...secret import Secret
from ..model import Notification, iso_utc
from .base import post_json

__all__ = ["SIGNATURE_HEADER", "WebhookChannel", "sign", "verify_signature", "webhook_payload"]

SIGNATURE_HEADER = "X-Voyagr-Signature-256"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended"


def webhook_payload(n: Notification, *, receiver: str = "voyagr-webhook") -> dict[str, Any]:
    labels = n.labels
    annotations = n.annotations
    return {
        "version": "4",
        "groupKey": f"voyagr:{n.service}:{n.alert.alert_type}:{n.alert.scope}",
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": receiver,
        "groupLabels": {"alert_type": n.alert.alert_type},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": n.dashboard_url,
        "notification_reason": n.reason,
        "alerts": [
            {
                "status": n.status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": iso_utc(n.starts_at),
                "endsAt": iso_utc(n.ends_at) if n.ends_at is not None else ZERO_TIME,
                "generatorURL": n.dashboard_url,
                "fingerprint": n.fingerprint,
            }
        ],
    }


def sign(secret: Secret, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.reveal().encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: Secret, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


class WebhookChannel:
    name = "webhook"
    min_interval_s = 0.0

    def __init__(
        self,
        url: Secret,
        *,
        secret: Secret | None = None,
        headers: Mapping[str, Secret] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._url = url
        self._secret = secret
        self._headers = dict(headers or {})
        self._context = ssl_context

    def __repr__(self) -> str:
        return f"WebhookChannel(url=Secret('**********'), signed={self._secret is not None})"

    def accepts(self, notification: Notification) -> bool:
        return notification.reason != "refresh"

    def send(self, notification: Notification, timeout: float) -> None:
        body = json.dumps(webhook_payload(notification)).encode()
        headers = {name: value.reveal() for name, value in self._headers.items()}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        post_json(
            self._url, None, body=body, headers=headers, timeout=timeout, context=self._context
        )
