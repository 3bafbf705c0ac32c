"""Slack, Discord and webhook channels against a real HTTP receiver on loopback."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from test_alert_support import FakeClock, Receiver, Reply, notification, serve
from voyagr_wsgi.alerts.channels.base import DeliveryFailed, parse_retry_after
from voyagr_wsgi.alerts.channels.discord import DiscordChannel
from voyagr_wsgi.alerts.channels.slack import SlackChannel
from voyagr_wsgi.alerts.channels.webhook import (
    SIGNATURE_HEADER,
    WebhookChannel,
    verify_signature,
)
from voyagr_wsgi.alerts.dispatcher import Dispatcher
from voyagr_wsgi.secret import Secret

TOKEN = "T000/B000/s3cr3t-token"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def secret_url(receiver: Receiver) -> Secret:
    return Secret(receiver.url(f"/services/{TOKEN}"))


def test_slack_posts_a_coloured_attachment(receiver: Receiver) -> None:
    SlackChannel(secret_url(receiver)).send(notification(suppressed=3), timeout=5)
    (req,) = receiver.wait_for(1)
    assert req.path == f"/services/{TOKEN}"
    assert req.headers["Content-Type"] == "application/json"
    assert req.json() == {
        "text": ":rotating_light: [FIRING] high_error_rate on api",
        "attachments": [
            {
                "color": "#A32037",
                "fallback": "[FIRING] high_error_rate on api: Error rate 7.4% (74/1000) over "
                "300s (threshold 5.0%)",
                "title": "Error rate 7.4% (74/1000) over 300s (threshold 5.0%)",
                "title_link": "https://api.example.com/_voyagr/dashboard",
                "text": "Error rate 7.4% (74/1000) over 300s (threshold 5.0%)",
                "fields": [
                    {"title": "Alert type", "value": "high_error_rate", "short": True},
                    {"title": "Severity", "value": "critical", "short": True},
                    {"title": "Suppressed", "value": "3 duplicates", "short": True},
                ],
                "footer": "voyagr_wsgi · api-prod-1",
                "ts": 1767225660,
            }
        ],
    }


@pytest.mark.parametrize(
    ("status", "severity", "colour", "title_prefix"),
    [
        pytest.param("firing", "critical", "#A32037", "", id="critical red"),
        pytest.param("firing", "warning", "#CACF29", "", id="warning yellow"),
        pytest.param("resolved", "critical", "good", "[RESOLVED] ", id="resolved green"),
    ],
)
def test_slack_colour_follows_severity_and_resolution(
    receiver: Receiver, status: str, severity: str, colour: str, title_prefix: str
) -> None:
    SlackChannel(secret_url(receiver)).send(notification(status, severity=severity), timeout=5)
    attachment = receiver.wait_for(1)[0].json()["attachments"][0]
    assert attachment["color"] == colour
    assert attachment["title"].startswith(title_prefix + "Error rate")


def test_discord_posts_an_embed_with_integer_colour_and_no_mentions(receiver: Receiver) -> None:
    receiver.default = Reply(204, b"")
    DiscordChannel(secret_url(receiver)).send(notification(), timeout=5)
    assert receiver.wait_for(1)[0].json() == {
        "username": "voyagr",
        "content": "[FIRING] high_error_rate on api",
        "allowed_mentions": {"parse": []},
        "embeds": [
            {
                "title": "Error rate 7.4% (74/1000) over 300s (threshold 5.0%)",
                "description": "Error rate 7.4% (74/1000) over 300s (threshold 5.0%)",
                "url": "https://api.example.com/_voyagr/dashboard",
                "color": 10038562,
                "fields": [
                    {"name": "Alert type", "value": "high_error_rate", "inline": True},
                    {"name": "Severity", "value": "critical", "inline": True},
                ],
                "footer": {"text": "voyagr_wsgi · api-prod-1"},
                "timestamp": "2026-01-01T00:01:00Z",
            }
        ],
    }


def test_discord_resolved_is_green(receiver: Receiver) -> None:
    DiscordChannel(secret_url(receiver)).send(notification("resolved"), timeout=5)
    embed = receiver.wait_for(1)[0].json()["embeds"][0]
    assert (embed["color"], embed["title"][:10]) == (3066993, "[RESOLVED]")


def test_discord_limits_are_enforced_on_huge_texts(receiver: Receiver) -> None:
    huge = "@everyone " + "x" * 20_000
    n = notification(summary=huge, description=huge, scope="s" * 5000, suppressed=7)
    n = dataclasses.replace(n, instance="i" * 5000)
    DiscordChannel(secret_url(receiver)).send(n, timeout=5)
    body = receiver.wait_for(1)[0].json()
    embed = body["embeds"][0]
    assert len(body["content"]) <= 2000
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
    total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000
    assert body["allowed_mentions"] == {"parse": []}


def test_webhook_posts_alertmanager_v4_body(receiver: Receiver) -> None:
    WebhookChannel(secret_url(receiver)).send(notification(), timeout=5)
    req = receiver.wait_for(1)[0]
    assert SIGNATURE_HEADER not in req.headers
    labels = {
        "alertname": "VoyagrHighErrorRate",
        "alert_type": "high_error_rate",
        "severity": "critical",
        "service": "api",
        "instance": "api-prod-1",
    }
    annotations = {
        "summary": "Error rate 7.4% (74/1000) over 300s (threshold 5.0%)",
        "value": "0.074",
        "threshold": "0.05",
        "dashboard": "https://api.example.com/_voyagr/dashboard",
    }
    body = req.json()
    fingerprint = body["alerts"][0].pop("fingerprint")
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert body == {
        "version": "4",
        "groupKey": "voyagr:api:high_error_rate:",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "voyagr-webhook",
        "groupLabels": {"alert_type": "high_error_rate"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "https://api.example.com/_voyagr/dashboard",
        "notification_reason": "new_alert",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://api.example.com/_voyagr/dashboard",
            }
        ],
    }


def test_webhook_resolved_carries_ends_at_and_same_fingerprint(receiver: Receiver) -> None:
    channel = WebhookChannel(secret_url(receiver))
    channel.send(notification(), timeout=5)
    channel.send(notification("resolved"), timeout=5)
    first, second = (r.json() for r in receiver.wait_for(2))
    assert second["status"] == "resolved"
    assert second["alerts"][0]["endsAt"] == "2026-01-01T00:01:00Z"
    assert first["alerts"][0]["fingerprint"] == second["alerts"][0]["fingerprint"]


def test_webhook_signature_is_hmac_sha256_of_the_raw_body(receiver: Receiver) -> None:
    key = Secret("shared-key")
    WebhookChannel(secret_url(receiver), secret=key).send(notification(), timeout=5)
    req = receiver.wait_for(1)[0]
    header = req.headers[SIGNATURE_HEADER]
    assert header.startswith("sha256=")
    assert verify_signature(key, req.body, header)
    assert not verify_signature(Secret("other-key"), req.body, header)
    assert not verify_signature(key, req.body + b" ", header)


def make_channel(kind: str, url: Secret) -> Any:
    return {"slack": SlackChannel, "discord": DiscordChannel, "webhook": WebhookChannel}[kind](url)


KINDS = [pytest.param(k, id=k) for k in ("slack", "discord", "webhook")]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("reply", "retryable", "retry_after", "dead"),
    [
        pytest.param(Reply(429, b"", {"Retry-After": "7"}), True, 7.0, False, id="429 Retry-After"),
        pytest.param(
            Reply(429, json.dumps({"message": "rl", "retry_after": 2.5, "global": False}).encode()),
            True,
            2.5,
            False,
            id="429 discord retry_after body",
        ),
        pytest.param(
            Reply(429, b'{"retry_after": 1.5}', {"Retry-After": "3"}),
            True,
            3.0,
            False,
            id="429 header and body: the longer",
        ),
        pytest.param(Reply(500, b"oops"), True, None, False, id="500 retryable"),
        pytest.param(Reply(404, b"unknown webhook"), False, None, True, id="404: a dead webhook"),
        pytest.param(Reply(401, b"invalid token"), False, None, True, id="401: dead"),
        pytest.param(Reply(410, b"gone"), False, None, True, id="410: dead"),
        pytest.param(Reply(400, b"invalid_payload"), False, None, False, id="400 not retryable"),
        pytest.param(
            Reply(301, b"", {"Location": "http://127.0.0.1:1/"}),
            False,
            None,
            False,
            id="redirect not followed",
        ),
    ],
)
def test_failures_classify_and_never_leak_the_url(
    receiver: Receiver,
    kind: str,
    reply: Reply,
    retryable: bool,
    retry_after: float | None,
    dead: bool,
) -> None:
    receiver.default = reply
    with pytest.raises(DeliveryFailed) as info:
        make_channel(kind, secret_url(receiver)).send(notification(), timeout=5)
    assert info.value.retryable is retryable
    assert info.value.dead is dead
    assert info.value.retry_after_s == retry_after
    assert "s3cr3t" not in str(info.value) and "s3cr3t" not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("kind", KINDS)
def test_a_hanging_receiver_times_out(receiver: Receiver, kind: str) -> None:
    receiver.default = Reply(hang=True)
    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match="timeout") as info:
        make_channel(kind, secret_url(receiver)).send(notification(), timeout=0.3)
    assert time.monotonic() - started < 3
    assert info.value.retryable and "s3cr3t" not in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_dripping_receiver_is_cut_off_at_the_total_timeout(receiver: Receiver, kind: str) -> None:
    # one byte every 0.2 s: each read is well inside any per-read timeout, the whole is not
    receiver.default = Reply(drip_s=0.2, body=b"ok" * 20)
    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match="timeout") as info:
        make_channel(kind, secret_url(receiver)).send(notification(), timeout=1.0)
    took = time.monotonic() - started
    assert 0.9 <= took < 2.0, took
    assert info.value.retryable


def test_channel_reprs_hide_the_webhook_url(receiver: Receiver) -> None:
    for kind in ("slack", "discord", "webhook"):
        assert "s3cr3t" not in repr(make_channel(kind, secret_url(receiver)))


@pytest.mark.parametrize("kind", KINDS)
def test_dispatcher_waits_out_retry_after_then_delivers(receiver: Receiver, kind: str) -> None:
    receiver.script = [Reply(429, b"", {"Retry-After": "7"}), Reply(503, b"")]
    clock = FakeClock()
    d = Dispatcher(
        [make_channel(kind, secret_url(receiver))],
        now=clock,
        sleep=clock.sleep,
        jitter=lambda: 1.0,
    )
    d.submit(notification())
    assert d.flush(60)
    assert len(receiver.wait_for(3)) == 3
    assert clock.sleeps == [7.0, 2.0]  # Retry-After, then backoff 1 * 2**1
    assert d.stats()[kind]["sent"] == 1 and d.stats()[kind]["retried"] == 2


def test_failed_delivery_log_lines_hide_the_url(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.default = Reply(500, b"")
    clock = FakeClock()
    d = Dispatcher(
        [SlackChannel(secret_url(receiver))], now=clock, sleep=clock.sleep, deadline_s=5.0
    )
    with caplog.at_level(logging.DEBUG, logger="voyagr_wsgi"):
        d.submit(notification())
        d.flush(10)
    assert d.stats()["slack"]["dropped"] == 1
    assert caplog.records and "s3cr3t" not in caplog.text
    assert "s3cr3t" not in json.dumps(d.stats())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("120", 120.0, id="delta seconds"),
        pytest.param("Thu, 01 Jan 2026 00:00:30 GMT", 30.0, id="HTTP date"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_retry_after_parses_seconds_and_http_dates(
    value: str | None, expected: float | None
) -> None:
    assert parse_retry_after(value, now=1767225600.0) == expected


def test_discord_empty_rate_limit_bucket_pauses_the_channel(receiver: Receiver) -> None:
    limited = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "4.5"}
    receiver.script = [Reply(204, b"", limited), Reply(204, b"", {"X-RateLimit-Remaining": "4"})]
    clock = FakeClock()
    d = Dispatcher([DiscordChannel(secret_url(receiver))], now=clock, sleep=clock.sleep)
    for i in range(3):
        d.submit(notification(summary=f"n{i}"))
    assert d.flush(60)
    assert len(receiver.wait_for(3)) == 3
    assert clock.sleeps == [4.5, 0.5]  # the reset, then the channel's own 0.5 s pacing


def test_credentials_in_the_url_become_basic_auth_and_headers_are_added(
    receiver: Receiver,
) -> None:
    from voyagr_wsgi._env import Env
    from voyagr_wsgi.alerts.channels import from_settings
    from voyagr_wsgi.alerts.config import AlertSettings

    base = receiver.url("/")
    userinfo = base.replace("http://", "http://ops:p%40ss@")
    env = {
        "ALERT_LOG_ENABLED": "false",
        "ALERT_WEBHOOK_ENABLED": "true",
        "ALERT_WEBHOOK_URL": userinfo + "hook",
        "ALERT_WEBHOOK_HEADERS": '{"X-Team": "payments"}',
        "ALERTMANAGER_URL": userinfo.rstrip("/"),
        "ALERTMANAGER_HEADERS": '{"X-Scope-OrgID": "tenant-1", "Authorization": "Bearer t0k"}',
    }
    for chan in from_settings(AlertSettings.from_env(Env(env))):
        chan.send(notification(), timeout=5)
    hook, manager = receiver.requests
    sent = {k.lower(): v for k, v in hook.headers.items()}  # header names: any case
    basic = "Basic " + base64.b64encode(b"ops:p@ss").decode()
    assert (hook.path, sent["authorization"], sent["x-team"]) == ("/hook", basic, "payments")
    assert manager.path == "/api/v2/alerts"
    sent = {k.lower(): v for k, v in manager.headers.items()}
    assert sent["x-scope-orgid"] == "tenant-1"
    assert sent["authorization"] == "Bearer t0k"  # an explicit header wins
    assert "ops" not in repr(from_settings(AlertSettings.from_env(Env(env))))


@pytest.mark.parametrize(
    "value",
    ['{"X-Scope-OrgID": 1}', "[1]", "not json s3cr3t", '{"Bad Name": "x"}', '{"A": "x\\ny"}'],
)
def test_bad_header_settings_are_refused_without_echoing_them(value: str) -> None:
    from voyagr_wsgi._env import Env
    from voyagr_wsgi.alerts.config import AlertSettings
    from voyagr_wsgi.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="ALERTMANAGER_HEADERS") as info:
        AlertSettings.from_env(Env({"ALERTMANAGER_HEADERS": value}))
    assert "s3cr3t" not in str(info.value)
