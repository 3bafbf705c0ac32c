"""Delivery latency of a healthy alert channel while another channel hangs or drips.

    .venv/bin/python benchmarks/alert_isolation.py [--alerts 20]

Three real HTTP receivers on loopback: Slack (answers at once), a webhook that never answers
and an Alertmanager that answers one byte every 0.5 s. The dispatcher sends ``--alerts``
notifications, one every 1.2 s (above Slack's one-per-second pacing); the script prints the
median and maximum time from submit to the Slack receiver's arrival. Not collected by ``make
bench`` (real sockets and sleeps).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_alert_support import Reply, notification, serve
from voyagr_wsgi.alerts.channels import AlertmanagerChannel, SlackChannel, WebhookChannel
from voyagr_wsgi.alerts.dispatcher import Dispatcher
from voyagr_wsgi.secret import Secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=8)
    args = parser.parse_args()
    slack_gen, hook_gen, am_gen = serve(), serve(), serve()
    slack, hook, manager = next(slack_gen), next(hook_gen), next(am_gen)
    hook.default = Reply(hang=True)
    manager.default = Reply(drip_s=0.5, body=b"ok" * 50)
    channels = [
        SlackChannel(Secret(slack.url("/services/T/B/x"))),
        WebhookChannel(Secret(hook.url("/hook"))),
        AlertmanagerChannel(Secret(manager.url(""))),
    ]
    dispatcher = Dispatcher(channels, send_timeout_s=5.0)
    dispatcher.start()
    sent: list[float] = []
    try:
        for i in range(args.alerts):
            sent.append(time.monotonic())
            dispatcher.submit(notification(summary=f"alert {i}"))
            time.sleep(1.2)
        slack.wait_for(args.alerts, timeout=60)
        arrived = [r.at for r in slack.requests]
    finally:
        hook.release.set()
        manager.release.set()
        dispatcher.stop(timeout=2)
        for gen in (slack_gen, hook_gen, am_gen):
            gen.close()
    latency = [a - s for s, a in zip(sent, arrived, strict=False)]
    print(f"slack got {len(arrived)}/{args.alerts} while the webhook hung and Alertmanager dripped")
    print(f"submit -> Slack receiver: median {statistics.median(latency) * 1000:.1f} ms, "
          f"max {max(latency) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
