"""Prometheus Alertmanager API v2: ``POST <ALERTMANAGER_URL>/api/v2/alerts``.

Set ``ALERTMANAGER_URL=http://alertmanager:9093``. Each notification becomes one
``postableAlert`` (``labels``, ``annotations``, ``startsAt``, ``endsAt``, ``generatorURL``).
Alertmanager deduplicates identical label sets, so several voyagr instances (several
machines) reporting the same condition become one alert there, and its routing, grouping,
silences and inhibition apply. Per its API doc, firing alerts are re-sent while they fire
(``refresh`` notifications every ``ALERTMANAGER_RESEND_SECONDS``) with ``endsAt`` pushed
forward to now + 4 x the resend interval (what Prometheus does), so an instance that dies
stops renewing and the alert resolves by itself; a resolved notice posts ``endsAt`` = now.
Behind an authenticating proxy, ``ALERTMANAGER_URL=https://user:pass@...`` sends basic auth
and ``ALERTMANAGER_HEADERS`` (a JSON object) any other header: ``{"X-Scope-OrgID": "team-a"}``
for Mimir's or Cortex's multi-tenant Alertmanager, ``{"Authorization": "Bearer ..."}``.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from ...secret import Secret
from ..model import Notification, iso_utc
from .base import post_json

__all__ = ["AlertmanagerChannel", "alertmanager_payload"]


def alertmanager_payload(n: Notification, *, valid_for_s: float) -> list[dict[str, Any]]:
    ends = n.ends_at if n.ends_at is not None else n.sent_at + valid_for_s
    alert: dict[str, Any] = {
        "labels": n.labels,
        "annotations": n.annotations,
        "startsAt": iso_utc(n.starts_at),
        "endsAt": iso_utc(ends),
    }
    if n.dashboard_url:
        alert["generatorURL"] = n.dashboard_url
    return [alert]


class AlertmanagerChannel:
    name = "alertmanager"
    min_interval_s = 0.0

    def __init__(
        self,
        base_url: Secret,
        *,
        resend_s: float = 60.0,
        headers: Mapping[str, Secret] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._url = Secret(base_url.reveal().rstrip("/") + "/api/v2/alerts")
        self.valid_for_s = 4 * resend_s
        self._headers = dict(headers or {})
        self._context = ssl_context

    def __repr__(self) -> str:
        return "AlertmanagerChannel(url=Secret('**********'))"

    def accepts(self, notification: Notification) -> bool:
        return True

    def send(self, notification: Notification, timeout: float) -> None:
        payload = alertmanager_payload(notification, valid_for_s=self.valid_for_s)
        headers = {name: value.reveal() for name, value in self._headers.items()}
        post_json(self._url, payload, timeout=timeout, headers=headers, context=self._context)
