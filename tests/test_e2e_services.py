"""Real gunicorn, 3 workers: the singleton services run in exactly one worker and move on.

The app (tests/gunicorn_apps/services_app.py) is a bare Stack with a singleton ``tick``
service that appends ``<pid> <time>`` to ``$VOYAGR_STATE_DIR/ticks`` every 0.1 s, and a
per-process service that records each worker it starts in. gunicorn runs with
examples/gunicorn.conf.py, i.e. ``from voyagr_wsgi.gunicorn import *``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from conftest import free_port
from gunicorn_apps.harness import alive, get, gunicorn, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

TAKEOVER_BUDGET_S = 5.0  # the Supervisor retries every 2 s


def lock_pid(state: Path) -> int | None:
    try:
        text = (state / "services.lock").read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def tick_pids(state: Path, since: float = 0.0) -> list[int]:
    try:
        lines = (state / "ticks").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [int(p) for p, t in (line.split() for line in lines if line) if float(t) >= since]


def lines(state: Path, name: str) -> list[str]:
    try:
        return (state / name).read_text().splitlines()
    except FileNotFoundError:
        return []


@pytest.mark.parametrize(
    ("app", "args"),
    [
        pytest.param("services_app:application", (), id="stack is the app"),
        pytest.param("services_app:application", ("--preload",), id="stack preloaded in master"),
        pytest.param("services_app:framework_app", (), id="stack held as wsgi_app"),
        pytest.param(
            "services_app:application",
            ("--worker-class", "gthread", "--threads", "4"),
            id="gthread workers",
        ),
    ],
)
def test_singleton_runs_in_one_worker_and_moves_within_seconds_after_sigkill(
    tmp_path: Path, app: str, args: tuple[str, ...]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    env = {"VOYAGR_STATE_DIR": str(state), "TICK_S": "0.1"}
    with gunicorn(app, port=free_port(), env=env, args=args, log_dir=str(tmp_path)) as server:
        workers = server.workers()
        assert len(workers) == 3
        # every worker started its per-process service; the master none
        wait_for(lambda: len(lines(state, "workers")) >= 3, what="3 workers' services")
        assert sorted(int(p) for p in lines(state, "workers")) == workers

        leader = wait_for(lambda: lock_pid(state), what="a leader")
        assert leader in workers
        started = time.time()
        wait_for(lambda: len(tick_pids(state, started)) >= 8, what="ticks")
        assert set(tick_pids(state)) == {leader}, "exactly one process runs the singleton"

        os.kill(leader, signal.SIGKILL)
        killed_at = time.monotonic()
        successor = wait_for(
            lambda: (pid := lock_pid(state)) != leader and pid is not None and pid,
            timeout=TAKEOVER_BUDGET_S + 2,
            what="another worker to take the lock",
        )
        wait_for(lambda: successor in tick_pids(state), timeout=2, what="successor ticks")
        took = time.monotonic() - killed_at
        assert took <= TAKEOVER_BUDGET_S
        assert successor != server.pid and alive(successor)

        after = time.time()
        wait_for(lambda: len(tick_pids(state, after)) >= 5, what="ticks after takeover")
        assert set(tick_pids(state, after)) == {successor}
        assert server.pid not in tick_pids(state)
        # the master replaced the killed worker, which starts only its per-process service
        wait_for(lambda: len(server.workers()) == 3 and leader not in server.workers())
        assert get(server.port).status == 200


@pytest.mark.parametrize(
    "sig",
    [
        pytest.param(signal.SIGTERM, id="SIGTERM: graceful"),
        pytest.param(signal.SIGQUIT, id="SIGQUIT: quick, via worker_int"),
    ],
)
def test_killed_worker_stops_services_with_graceful_timeout_minus_margin(
    tmp_path: Path, sig: signal.Signals
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    env = {"VOYAGR_STATE_DIR": str(state)}
    args = ("--graceful-timeout", "5")
    with gunicorn(
        "services_app:application", port=free_port(), env=env, args=args, log_dir=str(tmp_path)
    ):
        leader = wait_for(lambda: lock_pid(state), what="a leader")
        wait_for(lambda: leader in tick_pids(state), what="ticks")
        os.kill(leader, sig)
        stop = wait_for(
            lambda: [s for s in lines(state, "stops") if s.startswith(f"stop {leader} ")],
            what="the leader to stop its services",
        )
        # graceful_timeout 5 s minus the margin max(1 s, 10 %)
        assert len(stop) == 1 and 3.9 < float(stop[0].split()[2]) <= 4.0
        wait_for(lambda: lock_pid(state) not in (None, leader), timeout=7, what="a new leader")


def test_master_shutdown_stops_every_worker_within_graceful_timeout(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    env = {"VOYAGR_STATE_DIR": str(state)}
    with gunicorn(
        "services_app:application",
        port=free_port(),
        env=env,
        args=("--graceful-timeout", "5"),
        log_dir=str(tmp_path),
    ) as server:
        workers = server.workers()
        leader = wait_for(lambda: lock_pid(state), what="a leader")
        wait_for(lambda: leader in tick_pids(state), what="ticks")
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(10)
        assert server.proc.returncode == 0
        assert not any(alive(pid) for pid in workers)
    # only the leader had started the singleton, so only it stops one, with 5 s - 1 s
    stops = lines(state, "stops")
    assert [s.split()[:2] for s in stops] == [["stop", str(leader)]]
    assert 3.9 < float(stops[0].split()[2]) <= 4.0


def test_an_existing_worker_takes_over_when_no_replacement_is_forked(tmp_path: Path) -> None:
    """The master is frozen (SIGSTOP), so the takeover cannot come from a fresh worker."""
    state = tmp_path / "state"
    state.mkdir()
    env = {"VOYAGR_STATE_DIR": str(state)}
    with gunicorn(
        "services_app:application", port=free_port(), env=env, log_dir=str(tmp_path)
    ) as server:
        workers = server.workers()
        leader = wait_for(lambda: lock_pid(state), what="a leader")
        os.kill(server.pid, signal.SIGSTOP)
        try:
            os.kill(leader, signal.SIGKILL)
            killed_at = time.monotonic()
            successor = wait_for(
                lambda: (pid := lock_pid(state)) != leader and pid,
                timeout=TAKEOVER_BUDGET_S,
                what="a surviving worker to take the lock",
            )
            took = time.monotonic() - killed_at
            wait_for(lambda: successor in tick_pids(state), timeout=2, what="successor ticks")
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert successor in set(workers) - {leader}
        assert took <= 2.0 + 1.0  # one retry period of the Supervisor, plus scheduling slack


def test_example_config_serves_the_example_app(tmp_path: Path) -> None:
    """examples/gunicorn.conf.py + examples/app.py as shipped (wsgi_app = "app:application")."""
    env = {"VOYAGR_STATE_DIR": str(tmp_path / "state"), "ALLOWED_HOSTS": "127.0.0.1"}
    with gunicorn("", port=free_port(), env=env, workers=2, log_dir=str(tmp_path)) as server:
        home = get(server.port)
        assert home.status == 200 and home.body == b"hello from voyagr_wsgi\n"
        assert home.headers["x-content-type-options"] == "nosniff"
        assert get(server.port, "/api/production/livez").status == 200
        leader = wait_for(lambda: lock_pid(tmp_path / "state"), what="a leader")
        assert leader in server.workers()
        log = wait_for(lambda: "singleton" in (text := server.log()) and text)
    assert "2 gunicorn workers each keep their own in-memory rate limits" in log
    # the services' log lines reach stderr (exactly one worker runs the singletons) and
    # voyagr's access log replaces gunicorn's, the library's own endpoints included
    assert log.count("running singleton services") == 1
    assert f"[{leader}] [INFO] voyagr_wsgi.services: pid {leader} holds" in log
    access = [line.split("voyagr_wsgi.access: ", 1)[1] for line in log.splitlines()
              if "voyagr_wsgi.access: " in line]  # fmt: skip
    assert [a.split(" ")[1:4] for a in access] == [
        ['"GET', '/"', "200"], ['"GET', '/api/production/livez"', "200"]
    ]
    assert "gunicorn.access" not in log
