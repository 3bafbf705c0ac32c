"""voyagr_wsgi.gunicorn in-process: hook names, finding the Stack, stop timeout, warnings.

The real-process behaviour (one runner, failover, graceful stop) is in test_e2e_services.py.
"""

from __future__ import annotations

import logging
import os
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config

import voyagr_wsgi.gunicorn as hooks
from conftest import call, hello_app
from voyagr_wsgi import Stack, compose
from voyagr_wsgi.gunicorn import find_stack, stop_timeout

ROOT = Path(__file__).resolve().parent.parent


def test_exported_members_are_all_gunicorn_settings() -> None:
    settings = Config().settings
    for name in hooks.__all__:
        assert name in settings, f"{name} is not a gunicorn setting"
        if name != "logconfig_dict":
            assert callable(getattr(hooks, name))
        settings[name].set(getattr(hooks, name))  # gunicorn validates hooks' arity, the dict


def test_star_import_in_example_config_installs_the_hooks() -> None:
    namespace = runpy.run_path(str(ROOT / "examples" / "gunicorn.conf.py"))
    for name in hooks.__all__:
        assert namespace[name] is getattr(hooks, name)
    cfg = Config()
    for key, value in namespace.items():
        if key in cfg.settings:
            cfg.set(key, value)
    assert cfg.post_worker_init.__module__ == "voyagr_wsgi.gunicorn"


class Holder:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return hello_app(environ, start_response)


STACK = compose(hello_app)


@pytest.mark.parametrize(
    ("app", "found"),
    [
        pytest.param(STACK, True, id="the stack itself"),
        pytest.param(Holder(wsgi_app=STACK), True, id="flask-style wsgi_app"),
        pytest.param(Holder(app=Holder(application=STACK)), True, id="two wrappers deep"),
        pytest.param(hello_app, False, id="a plain function"),
        pytest.param(None, False, id="nothing loaded"),
    ],
)
def test_find_stack_finds_the_stack_the_app_is_or_holds(app: Any, found: bool) -> None:
    assert (find_stack(app) is STACK) is found


def test_find_stack_survives_a_reference_cycle() -> None:
    a = Holder()
    b = Holder(app=a)
    a.app = b
    assert find_stack(a) is None


@pytest.mark.parametrize(
    ("graceful", "expected"),
    [
        pytest.param(30, 27.0, id="default 30 s keeps 10 %"),
        pytest.param(5, 4.0, id="short: at least 1 s margin"),
        pytest.param(0.5, 0.0, id="shorter than the margin"),
    ],
)
def test_stop_timeout_is_graceful_timeout_minus_margin(graceful: float, expected: float) -> None:
    assert stop_timeout(graceful) == pytest.approx(expected)


class RecordingService:
    name = "recording"
    singleton = False

    def __init__(self) -> None:
        self.events: list[Any] = []

    def start(self) -> None:
        self.events.append("start")

    def stop(self, timeout: float | None = None) -> None:
        self.events.append(("stop", timeout))

    def state(self) -> dict[str, Any]:
        return {}


def worker(app: Any, *, pid: int | None = None, graceful: float = 30) -> Any:
    return SimpleNamespace(
        wsgi=app,
        pid=os.getpid() if pid is None else pid,
        cfg=SimpleNamespace(graceful_timeout=graceful),
    )


def test_post_worker_init_starts_and_worker_exit_stops_the_stack(tmp_path: Path) -> None:
    service = RecordingService()
    stack = Stack(hello_app, services=[service], state_dir=str(tmp_path))
    stack.supervisor.now = lambda: 0.0  # a frozen clock: the budget is not eaten while stopping
    hooks.post_worker_init(worker(Holder(wsgi_app=stack)))
    hooks.worker_exit(None, worker(Holder(wsgi_app=stack), graceful=10))
    assert service.events == ["start", ("stop", 9.0)]
    assert call(stack).code == 200


def test_worker_exit_in_the_master_for_a_gone_worker_does_nothing(tmp_path: Path) -> None:
    service = RecordingService()
    stack = Stack(hello_app, services=[service], state_dir=str(tmp_path))
    stack.start()
    hooks.worker_exit(None, worker(stack, pid=os.getpid() + 1))
    assert service.events == ["start"]
    stack.stop(1)


def test_post_worker_init_warns_when_the_app_holds_no_stack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="voyagr_wsgi.gunicorn"):
        hooks.post_worker_init(worker(hello_app))
    assert "not a voyagr_wsgi Stack" in caplog.text


def test_state_dir_comes_from_the_preloaded_stack_else_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOYAGR_STATE_DIR", "/srv/state")
    stack = Stack(hello_app, state_dir=str(tmp_path / "pre"))
    preloaded = SimpleNamespace(app=SimpleNamespace(callable=stack))
    not_loaded = SimpleNamespace(app=SimpleNamespace(callable=None))
    assert hooks.state_dir(preloaded) == str(tmp_path / "pre")
    assert hooks.state_dir(not_loaded) == "/srv/state"


@pytest.mark.parametrize(
    ("workers", "env", "expected"),
    [
        pytest.param(3, {"RATE_LIMIT_STORAGE": "memory"}, "each keep their own", id="memory x3"),
        pytest.param(1, {"RATE_LIMIT_STORAGE": "memory"}, None, id="memory x1"),
        pytest.param(3, {"RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0"}, None, id="redis x3"),
        pytest.param(
            3,
            {"RATE_LIMIT_STORAGE": "memory", "RATE_LIMIT_ENABLED": "false"},
            None,
            id="limits off",
        ),
        pytest.param(
            3,
            {"RATE_LIMIT_STORAGE": "memcached://x"},
            "cannot check the rate-limit store",
            id="unreadable settings",
        ),
    ],
)
def test_when_ready_warns_about_memory_rate_limits_under_several_workers(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    workers: int,
    env: dict[str, str],
    expected: str | None,
) -> None:
    for name in ("RATE_LIMIT_STORAGE", "RATE_LIMIT_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="voyagr_wsgi.gunicorn"):
        hooks.when_ready(SimpleNamespace(cfg=SimpleNamespace(workers=workers)))
    if expected is None:
        assert caplog.records == []
    else:
        assert expected in caplog.text


class SlowStop(RecordingService):
    """Its stop() takes ``takes_s`` seconds of the injected clock."""

    def __init__(self, clock: list[float], takes_s: float) -> None:
        super().__init__()
        self.clock, self.takes_s = clock, takes_s

    def stop(self, timeout: float | None = None) -> None:
        super().stop(timeout)
        self.clock[0] += self.takes_s


def test_worker_exit_budget_bounds_the_whole_stop_not_each_service(tmp_path: Path) -> None:
    clock = [100.0]
    first, second, third = (SlowStop(clock, 10.0) for _ in range(3))
    stack = Stack(hello_app, services=[third, second, first], state_dir=str(tmp_path))
    stack.supervisor.now = lambda: clock[0]
    hooks.post_worker_init(worker(stack))
    hooks.worker_exit(None, worker(stack, graceful=30))  # 27 s for everything
    # stopped in reverse start order, each given what the previous ones left
    assert [s.events[-1] for s in (first, second, third)] == [
        ("stop", 27.0),
        ("stop", 17.0),
        ("stop", 7.0),
    ]
