"""The e-mail channel against a real SMTP server (aiosmtpd) on loopback: plain, STARTTLS with
AUTH, implicit TLS, with a certificate from a throw-away CA (trustme)."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from conftest import free_port
from test_alert_support import notification
from voyagr_wsgi._env import Env
from voyagr_wsgi.alerts.channels.base import DeliveryFailed
from voyagr_wsgi.alerts.channels.smtp import SmtpChannel
from voyagr_wsgi.errors import ConfigurationError
from voyagr_wsgi.secret import Secret

PASSWORD = "pa55-w0rd"


class Inbox:
    def __init__(self, reply: str = "250 OK") -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.reply = reply
        self.logins: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
            self.logins.append(session.login_data)
        return self.reply


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"alerts",
        PASSWORD.encode(),
    )
    return AuthResult(
        success=ok, handled=False, auth_data=data
    )  # handled=False: server answers 535


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def run(inbox: Inbox, **kw: Any) -> Iterator[Controller]:
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kw)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def channel(controller: Controller, security: str, **kw: Any) -> SmtpChannel:
    return SmtpChannel(
        host="127.0.0.1",
        port=controller.port,
        sender="alerts@example.com",
        recipients=("ops@example.com", "oncall@example.com"),
        security=security,  # type: ignore[arg-type]
        **kw,
    )


def parts(message: Message) -> dict[str, str]:
    return {
        p.get_content_type(): p.get_payload(decode=True).decode()  # type: ignore[union-attr]
        for p in message.walk()
        if not p.is_multipart()
    }


def test_plain_smtp_delivers_text_and_html_parts() -> None:
    inbox = Inbox()
    for controller in run(inbox):
        channel(controller, "none").send(notification(suppressed=2), timeout=5)
    ((sender, rcpts, message),) = inbox.messages
    assert sender == "alerts@example.com"
    assert rcpts == ["ops@example.com", "oncall@example.com"]
    assert message["Subject"] == (
        "[FIRING] high_error_rate on api: Error rate 7.4% (74/1000) over 300s (threshold 5.0%)"
    )
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    assert "Suppressed: 2 duplicates" in body["text/plain"]
    assert "Threshold: 0.05" in body["text/plain"]
    assert "<h2" in body["text/html"] and "high_error_rate" in body["text/html"]


def test_starttls_with_auth_delivers(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    inbox = Inbox()
    for controller in run(
        inbox,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    ):
        channel(
            controller,
            "starttls",
            username="alerts",
            password=Secret(PASSWORD),
            ssl_context=client_tls,
        ).send(notification("resolved"), timeout=5)
    ((_, _, message),) = inbox.messages
    assert message["Subject"].startswith("[RESOLVED] high_error_rate on api")
    assert "Resolved at: 2026-01-01T00:01:00Z" in parts(message)["text/plain"]
    assert inbox.logins == [b"alerts"]


def test_implicit_tls_with_auth_delivers(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    inbox = Inbox()
    for controller in run(
        # implicit TLS: aiosmtpd only tracks STARTTLS, so it must not insist on it for AUTH
        inbox,
        ssl_context=server_tls,
        authenticator=authenticator,
        auth_require_tls=False,
    ):
        channel(
            controller, "ssl", username="alerts", password=Secret(PASSWORD), ssl_context=client_tls
        ).send(notification(), timeout=5)
    assert len(inbox.messages) == 1 and inbox.logins == [b"alerts"]


def test_wrong_password_is_not_retried_and_not_printed(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    inbox = Inbox()
    for controller in run(
        inbox, tls_context=server_tls, require_starttls=True, authenticator=authenticator
    ):
        with pytest.raises(DeliveryFailed) as info:
            channel(
                controller,
                "starttls",
                username="alerts",
                password=Secret("wrong-" + PASSWORD),
                ssl_context=client_tls,
            ).send(notification(), timeout=5)
    assert info.value.retryable is False
    assert str(info.value) == "SMTP 535"
    assert PASSWORD not in repr(info.value) and inbox.messages == []


def test_starttls_required_but_not_offered_fails_without_sending() -> None:
    inbox = Inbox()
    for controller in run(inbox):
        with pytest.raises(DeliveryFailed, match="STARTTLS") as info:
            channel(controller, "starttls").send(notification(), timeout=5)
    assert info.value.retryable is False and inbox.messages == []


def test_untrusted_certificate_is_refused_with_the_fix_in_the_message(
    server_tls: ssl.SSLContext,
) -> None:
    inbox = Inbox()
    for controller in run(inbox, tls_context=server_tls, require_starttls=True):
        with pytest.raises(DeliveryFailed, match="set ALERT_CA_FILE to the CA bundle") as info:
            channel(controller, "starttls").send(notification(), timeout=5)  # system CAs
    assert inbox.messages == []
    assert not info.value.retryable


def test_alert_ca_file_trusts_a_private_ca(
    server_tls: ssl.SSLContext, ca: trustme.CA, tmp_path: Path
) -> None:
    from voyagr_wsgi.alerts.channels import from_settings
    from voyagr_wsgi.alerts.config import AlertSettings

    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    inbox = Inbox()
    for controller in run(inbox, tls_context=server_tls, require_starttls=True):
        env = {
            "ALERT_EMAIL_ENABLED": "true", "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(controller.port), "ALERT_EMAIL_FROM": "alerts@example.com",
            "ALERT_EMAIL_TO": "ops@example.com", "ALERT_CA_FILE": str(bundle),
            "ALERT_LOG_ENABLED": "false",
        }  # fmt: skip
        (email,) = from_settings(AlertSettings.from_env(Env(env)))
        email.send(notification(), timeout=5)
    assert len(inbox.messages) == 1


def test_a_missing_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    from voyagr_wsgi.alerts.config import AlertSettings

    with pytest.raises(ConfigurationError, match="ALERT_CA_FILE"):
        AlertSettings.from_env(Env({"ALERT_CA_FILE": str(tmp_path / "nope.pem")}))


def test_every_message_has_date_message_id_and_a_severity_colour() -> None:
    inbox = Inbox()
    for controller in run(inbox):
        chan = channel(controller, "none")
        chan.send(notification(severity="critical"), timeout=5)
        chan.send(notification(severity="warning"), timeout=5)
        chan.send(notification("resolved", severity="warning"), timeout=5)
    messages = [m for _, _, m in inbox.messages]
    for message in messages:
        assert parsedate_to_datetime(message["Date"]).tzinfo is not None
        assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith(
            "@example.com>"
        )
    assert len({m["Message-ID"] for m in messages}) == 3
    colours = [parts(m)["text/html"].split("color:")[1][:7] for m in messages]
    assert colours == ["#A32037", "#E8A317", "#3AA337"]  # critical, warning, resolved


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        pytest.param("451 4.3.0 try again later", True, id="4xx retried"),
        pytest.param("554 5.7.1 rejected", False, id="5xx not retried"),
    ],
)
def test_smtp_reply_codes_classify_retries(reply: str, retryable: bool) -> None:
    for controller in run(Inbox(reply)):
        with pytest.raises(DeliveryFailed) as info:
            channel(controller, "none").send(notification(), timeout=5)
    assert info.value.retryable is retryable
    assert str(info.value) == f"SMTP {reply[:3]}"


def test_a_silent_smtp_server_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        smtp = SmtpChannel(
            host="127.0.0.1",
            port=listener.getsockname()[1],
            sender="a@example.com",
            recipients=("b@example.com",),
            security="none",
        )
        with pytest.raises(DeliveryFailed, match="SMTP error") as info:
            smtp.send(notification(), timeout=0.3)
        assert time.monotonic() - started < 3 and info.value.retryable
    finally:
        thread.join(2)
        for sock in accepted:
            sock.close()
        listener.close()


def test_smtp_repr_has_no_password() -> None:
    smtp = SmtpChannel(
        host="mx",
        port=587,
        sender="a@x",
        recipients=("b@x",),
        username="u",
        password=Secret(PASSWORD),
    )
    assert PASSWORD not in repr(smtp)
