"""Every injectable clock is the ``now=`` keyword (STYLE: ``now=time.monotonic``)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from voyagr_wsgi.alerts.dispatcher import Dispatcher
from voyagr_wsgi.alerts.evaluator import AlertService
from voyagr_wsgi.backups.health import health_source
from voyagr_wsgi.backups.manager import BackupManager
from voyagr_wsgi.backups.scheduler import BackupScheduler
from voyagr_wsgi.layers import Metrics
from voyagr_wsgi.metrics.registry import Registry
from voyagr_wsgi.ratelimit.memory import MemoryStore
from voyagr_wsgi.ratelimit.redis_store import RedisStore


@pytest.mark.parametrize(
    "target",
    [Metrics, BackupManager, BackupScheduler, health_source, Dispatcher, AlertService,
     MemoryStore, RedisStore, Registry],
    ids=lambda t: t.__name__,
)  # fmt: skip
def test_the_clock_is_injected_as_now(target: Any) -> None:
    params = inspect.signature(target).parameters
    assert "now" in params and params["now"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "clock" not in params
