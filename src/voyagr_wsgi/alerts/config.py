"""``AlertSettings``: every alerting option, read from the environment.

Thresholds and timings (defaults in brackets)::

    ALERTS_ENABLED [true]                       evaluator + dispatcher at all
    ALERT_EVALUATION_INTERVAL_SECONDS [15]      how often the rules run
    ALERT_WINDOW_SECONDS [300]                  the sliding window they look at
    ALERT_RESPONSE_TIME_THRESHOLD_SECONDS [5]   + ALERT_RESPONSE_TIME_STATISTIC [p95]
    ALERT_ERROR_RATE_THRESHOLD [0.05]           ALERT_CACHE_HIT_RATE_THRESHOLD [0.5]
    ALERT_ENGINE_FAILURE_RATE_THRESHOLD [0.3]   per upstream
    ALERT_SLOW_QUERY_THRESHOLD [10]             slow queries per window (0 disables)
    ALERT_BACKUP_MAX_AGE_SECONDS [0]            0: twice the backup interval
    ALERT_MIN_REQUESTS [20]                     ratios need this many events in the window
    ALERT_FOR_SECONDS [0]                       a condition must hold this long first
    ALERT_KEEP_FIRING_SECONDS [60]              ... and be clear this long before resolving
    ALERT_DEDUP_SECONDS [300]                   one notification per type+scope per this,
                                                within one episode (a re-fire after a
                                                resolve is a new episode, sent at once)

Channels: ``ALERT_EMAIL_ENABLED`` (``SMTP_*``, ``ALERT_EMAIL_FROM``, ``ALERT_EMAIL_TO``),
``ALERT_SLACK_ENABLED`` (``SLACK_WEBHOOK_URL``), ``ALERT_DISCORD_ENABLED``
(``DISCORD_WEBHOOK_URL``), ``ALERT_WEBHOOK_ENABLED`` (``ALERT_WEBHOOK_URL``,
``ALERT_WEBHOOK_SECRET``, ``ALERT_WEBHOOK_HEADERS``), ``ALERTMANAGER_URL``
(``ALERTMANAGER_HEADERS``); the log channel is always on. A URL may carry credentials
(``https://user:pass@host/...``: sent as basic auth); the ``*_HEADERS`` variables are JSON
objects of extra headers (``{"X-Scope-OrgID": "team-a"}``). ``ALERT_CA_FILE`` verifies TLS
(SMTP and HTTPS channels) against a CA bundle of your own. Webhook URLs, headers and passwords
are kept as :class:`~voyagr_wsgi.secret.Secret` and never printed.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from .._env import Env
from ..errors import ConfigurationError
from ..secret import Secret

__all__ = ["AlertSettings", "SmtpSecurity", "Statistic"]

Statistic = Literal["p50", "p95", "p99", "avg", "max"]
SmtpSecurity = Literal["starttls", "ssl", "none"]
_DEFAULT_SMTP_PORT = {"starttls": 587, "ssl": 465, "none": 25}


def _url(env: Env, name: str, *, required: bool) -> Secret | None:
    value = env.secret(name)
    if value is None:
        if required:
            raise ConfigurationError(f"{name} is required when its channel is enabled")
        return None
    parts = urlsplit(value.reveal())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # never echo the value: a webhook URL is a credential
        raise ConfigurationError(f"{name} must be an http:// or https:// URL")
    return value


def _headers(env: Env, name: str) -> dict[str, Secret]:
    value = env.secret(name)
    if value is None:
        return {}
    hint = f'{name} must be a JSON object of header names to values: {{"X-Scope-OrgID": "a"}}'
    try:
        doc = json.loads(value.reveal())
    except ValueError:
        raise ConfigurationError(hint) from None  # never echo the value: it may hold a token
    if not isinstance(doc, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in doc.items()
    ):
        raise ConfigurationError(hint)
    for key, val in doc.items():
        bad_value = any(c in val for c in "\r\n") or not val.isprintable()
        if not key or not all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in key) or bad_value:
            raise ConfigurationError(f"{name}: header {key!r} has a bad name or value")
    return {key: Secret(val) for key, val in doc.items()}


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Options of the alerts area (see the module docstring for the variables)."""

    enabled: bool = True
    evaluation_interval_s: float = 15.0
    window_s: float = 300.0
    response_time_threshold_s: float = 5.0
    response_time_statistic: Statistic = "p95"
    error_rate_threshold: float = 0.05
    cache_hit_rate_threshold: float = 0.5
    engine_failure_rate_threshold: float = 0.3
    slow_query_threshold: int = 10
    backup_max_age_s: float = 0.0  # 0: twice the backup interval
    min_requests: int = 20
    for_s: float = 0.0
    keep_firing_s: float = 60.0  # clear this long before a resolve (damps flapping)
    dedup_s: float = 300.0
    queue_size: int = 1000
    delivery_deadline_s: float = 300.0
    send_timeout_s: float = 10.0
    service_name: str = "voyagr"
    instance: str = ""  # "" = this host's name
    dashboard_url: str = ""
    log_enabled: bool = True
    email_enabled: bool = False
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: Secret | None = None
    smtp_security: SmtpSecurity = "starttls"
    email_from: str = ""
    email_to: tuple[str, ...] = ()
    slack_enabled: bool = False
    slack_webhook_url: Secret | None = None
    discord_enabled: bool = False
    discord_webhook_url: Secret | None = None
    webhook_enabled: bool = False
    webhook_url: Secret | None = None
    webhook_secret: Secret | None = None
    webhook_headers: dict[str, Secret] = field(default_factory=dict)
    alertmanager_url: Secret | None = None
    alertmanager_headers: dict[str, Secret] = field(default_factory=dict)
    ca_file: str = ""  # a CA bundle for SMTP and HTTPS channels ("" = the system's)
    alertmanager_resend_s: float = 60.0

    @property
    def instance_name(self) -> str:
        return self.instance or socket.gethostname()

    @classmethod
    def from_env(cls, env: Env) -> AlertSettings:
        email = env.bool("ALERT_EMAIL_ENABLED", False)
        security: SmtpSecurity = env.choice(
            "SMTP_SECURITY", "starttls", ("starttls", "ssl", "none")
        )
        email_to = env.list("ALERT_EMAIL_TO")
        if email and not env.has("SMTP_HOST"):
            raise ConfigurationError("SMTP_HOST is required when ALERT_EMAIL_ENABLED=true")
        if email and not (env.has("ALERT_EMAIL_FROM") and email_to):
            raise ConfigurationError(
                "ALERT_EMAIL_FROM and ALERT_EMAIL_TO (a comma list of addresses) are required "
                "when ALERT_EMAIL_ENABLED=true"
            )
        slack = env.bool("ALERT_SLACK_ENABLED", False)
        discord = env.bool("ALERT_DISCORD_ENABLED", False)
        webhook = env.bool("ALERT_WEBHOOK_ENABLED", False)
        return cls(
            enabled=env.bool("ALERTS_ENABLED", True),
            evaluation_interval_s=env.float("ALERT_EVALUATION_INTERVAL_SECONDS", 15.0, minimum=0.1),
            window_s=env.float("ALERT_WINDOW_SECONDS", 300.0, minimum=1.0),
            response_time_threshold_s=env.float(
                "ALERT_RESPONSE_TIME_THRESHOLD_SECONDS", 5.0, minimum=0.0
            ),
            response_time_statistic=env.choice(
                "ALERT_RESPONSE_TIME_STATISTIC", "p95", ("p50", "p95", "p99", "avg", "max")
            ),
            error_rate_threshold=env.float(
                "ALERT_ERROR_RATE_THRESHOLD", 0.05, minimum=0.0, maximum=1.0
            ),
            cache_hit_rate_threshold=env.float(
                "ALERT_CACHE_HIT_RATE_THRESHOLD", 0.5, minimum=0.0, maximum=1.0
            ),
            engine_failure_rate_threshold=env.float(
                "ALERT_ENGINE_FAILURE_RATE_THRESHOLD", 0.3, minimum=0.0, maximum=1.0
            ),
            slow_query_threshold=env.int("ALERT_SLOW_QUERY_THRESHOLD", 10, minimum=0),
            backup_max_age_s=env.float("ALERT_BACKUP_MAX_AGE_SECONDS", 0.0, minimum=0.0),
            min_requests=env.int("ALERT_MIN_REQUESTS", 20, minimum=1),
            for_s=env.float("ALERT_FOR_SECONDS", 0.0, minimum=0.0),
            keep_firing_s=env.float("ALERT_KEEP_FIRING_SECONDS", 60.0, minimum=0.0),
            dedup_s=env.float("ALERT_DEDUP_SECONDS", 300.0, minimum=0.0),
            queue_size=env.int("ALERT_QUEUE_SIZE", 1000, minimum=1),
            delivery_deadline_s=env.float("ALERT_DELIVERY_DEADLINE_SECONDS", 300.0, minimum=1.0),
            send_timeout_s=env.float("ALERT_SEND_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            service_name=env.str("ALERT_SERVICE_NAME", "voyagr"),
            instance=env.str("ALERT_INSTANCE", ""),
            dashboard_url=env.str("ALERT_DASHBOARD_URL", ""),
            log_enabled=env.bool("ALERT_LOG_ENABLED", True),
            email_enabled=email,
            smtp_host=env.str("SMTP_HOST"),
            smtp_port=env.int("SMTP_PORT", _DEFAULT_SMTP_PORT[security], minimum=1, maximum=65535),
            smtp_username=env.str("SMTP_USERNAME"),
            smtp_password=env.secret("SMTP_PASSWORD"),
            smtp_security=security,
            email_from=env.str("ALERT_EMAIL_FROM"),
            email_to=email_to,
            slack_enabled=slack,
            slack_webhook_url=_url(env, "SLACK_WEBHOOK_URL", required=slack),
            discord_enabled=discord,
            discord_webhook_url=_url(env, "DISCORD_WEBHOOK_URL", required=discord),
            webhook_enabled=webhook,
            webhook_url=_url(env, "ALERT_WEBHOOK_URL", required=webhook),
            webhook_secret=env.secret("ALERT_WEBHOOK_SECRET"),
            webhook_headers=_headers(env, "ALERT_WEBHOOK_HEADERS"),
            alertmanager_url=_url(env, "ALERTMANAGER_URL", required=False),
            alertmanager_headers=_headers(env, "ALERTMANAGER_HEADERS"),
            ca_file=_ca_file(env),
            alertmanager_resend_s=env.float("ALERTMANAGER_RESEND_SECONDS", 60.0, minimum=1.0),
        )


def _ca_file(env: Env) -> str:
    path = env.str("ALERT_CA_FILE")
    if path and not os.path.isfile(path):
        raise ConfigurationError(f"ALERT_CA_FILE={path!r}: no such file (a PEM CA bundle)")
    return path
