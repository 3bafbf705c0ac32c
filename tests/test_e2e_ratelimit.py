"""Real gunicorn (3 workers) and a real redis-server on loopback: one budget for all workers,
and the failure policy while Redis is down."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from gunicorn_apps.harness import get, gunicorn, spread, wait_for
from ratelimit_helpers import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(90)]

LIMIT = 10


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def env_for(tmp_path: Path, storage: str, failure: str = "open") -> dict[str, str]:
    return {
        "VOYAGR_STATE_DIR": str(tmp_path / "state"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "RATE_LIMIT_REQUESTS": str(LIMIT),
        "RATE_LIMIT_WINDOW_SECONDS": "600",
        "RATE_LIMIT_STORAGE": storage,
        "RATE_LIMIT_REDIS_FAILURE": failure,
        "RATE_LIMIT_ROUTES": f"/other={LIMIT}/600s",  # a budget of its own
        "BACKUP_ENABLED": "false",
    }


def burst(port: int, n: int, path: str = "/") -> tuple[Counter[int], set[bytes]]:
    """``n`` requests spread over the workers: status counts, pids that answered 200."""
    answers = spread(port, path, n)
    codes = Counter(a.status for a in answers)
    return codes, {a.body for a in answers if a.status == 200}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="app loaded in each worker"),
        pytest.param(("--preload",), id="app preloaded in the master"),
    ],
)
def test_redis_limit_holds_across_three_workers(
    redis: RedisServer, tmp_path: Path, args: tuple[str, ...]
) -> None:
    with gunicorn(
        "stack_app:application",
        port=free_port(),
        env=env_for(tmp_path, redis.url),
        args=args,
        log_dir=str(tmp_path),
    ) as server:
        codes, served_by = burst(server.port, 40)
        assert codes == Counter({200: LIMIT, 429: 40 - LIMIT})
        assert len(served_by) >= 2, "the allowed requests came from several workers"
        assert "in-memory rate limits" not in server.log()
        denied = get(server.port)
        assert denied.status == 429 and int(denied.headers["retry-after"]) >= 1


def test_memory_store_under_three_workers_warns_at_startup(tmp_path: Path) -> None:
    with gunicorn(
        "stack_app:application",
        port=free_port(),
        env=env_for(tmp_path, "memory"),
        log_dir=str(tmp_path),
    ) as server:
        assert "3 gunicorn workers each keep their own in-memory rate limits" in server.log()
        codes, _ = burst(server.port, 40)
        # each worker has its own budget: at least one, at most three budgets are spent
        assert LIMIT <= codes[200] <= 3 * LIMIT


@pytest.mark.parametrize(
    ("failure", "while_down"),
    [
        pytest.param("open", 200, id="fail open: served without limits"),
        pytest.param("closed", 503, id="fail closed: 503"),
    ],
)
def test_redis_killed_mid_traffic_applies_policy_and_limits_return(
    redis: RedisServer, tmp_path: Path, failure: str, while_down: int
) -> None:
    with gunicorn(
        "stack_app:application",
        port=free_port(),
        env=env_for(tmp_path, redis.url, failure),
        log_dir=str(tmp_path),
    ) as server:
        codes, _ = burst(server.port, LIMIT + 5)
        assert codes == Counter({200: LIMIT, 429: 5})

        redis.kill()
        # a worker that knows the client is over its limit on "/" answers 429 from memory
        # until the retry time; /other has a budget no worker holds anything of: every
        # request there needs Redis, so the failure policy answers
        started = time.monotonic()
        codes, _ = burst(server.port, 30, "/other")
        assert codes == Counter({while_down: 30}), "every request answered per the policy"
        assert time.monotonic() - started < 10, "no per-request timeout pile-up"

        redis.start()  # same port, empty (no persistence): a fresh budget
        back_at = time.monotonic()

        # each worker retries Redis after its backoff (1 s): every worker limits again soon
        def all_limited() -> bool:
            return burst(server.port, 6, "/other")[0] == Counter({429: 6})

        wait_for(all_limited, timeout=10, every=0.05, what="429s from every worker")
        assert time.monotonic() - back_at < 5
