"""``voyagr-wsgi alert test``: one test notification through every configured channel, with
real receivers (HTTP on loopback, aiosmtpd), each result reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from conftest import free_port
from test_alert_support import Reply, serve
from voyagr_wsgi.cli import main


class Inbox:
    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = getattr(envelope, "content", b"")
        for line in content.decode(errors="replace").splitlines():
            if line.startswith("Subject:"):
                self.subjects.append(line)
        return "250 OK"


def test_alert_test_reports_each_channel_and_fails_when_one_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    hooks, slack, manager = serve(), serve(), serve()
    webhook, dead_slack, alertmanager = next(hooks), next(slack), next(manager)
    dead_slack.default = Reply(status=404)
    try:
        env_file = tmp_path / "prod.env"
        env_file.write_text(
            "ALERT_INSTANCE=api-1\n"
            "ALERT_EMAIL_ENABLED=true\nSMTP_HOST=127.0.0.1\n"
            f"SMTP_PORT={smtp.port}\nSMTP_SECURITY=none\n"
            "ALERT_EMAIL_FROM=alerts@example.com\nALERT_EMAIL_TO=ops@example.com\n"
            f"ALERT_WEBHOOK_ENABLED=true\nALERT_WEBHOOK_URL={webhook.url('/hook')}\n"
            f"ALERT_SLACK_ENABLED=true\nSLACK_WEBHOOK_URL={dead_slack.url('/services/T/B/s3cr3t')}\n"
            f"ALERTMANAGER_URL={alertmanager.url('')}\n"
        )
        monkeypatch.setattr("os.environ", {})
        code = main(["alert", "test", "--env-file", str(env_file), "--timeout", "5"])
    finally:
        smtp.stop()
        for gen in (hooks, slack, manager):
            gen.close()
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert "ok   log" in lines and "ok   email" in lines and "ok   webhook" in lines
    assert "ok   alertmanager" in lines
    assert "FAIL slack: HTTP 404" in lines
    assert "4 of 5 channel(s) delivered the test" in lines
    assert "s3cr3t" not in out
    assert inbox.subjects and "test_notification" in inbox.subjects[0]
    (hook,) = webhook.requests
    assert hook.json()["commonLabels"]["alert_type"] == "test_notification"
    firing, resolved = (r.json()[0] for r in alertmanager.requests)
    assert firing["labels"]["alertname"] == "VoyagrTestNotification"
    assert resolved["labels"] == firing["labels"]
    assert resolved["endsAt"] < firing["endsAt"]  # resolved now: it does not stay in the UI


def test_alert_test_succeeds_when_every_channel_delivers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.environ", {})
    assert main(["alert", "test"]) == 0  # the log channel only
    assert "1 of 1 channel(s) delivered the test" in capsys.readouterr().out
