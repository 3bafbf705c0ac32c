"""Start real gunicorn / redis-server processes on loopback and always clean them up."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(ROOT, "tests", "gunicorn_apps")
EXAMPLE_CONF = os.path.join(ROOT, "examples", "gunicorn.conf.py")
GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 10.0, every: float = 0.05, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what or probe}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def children(pid: int) -> list[int]:
    """Live child pids of ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def get(
    port: int, path: str = "/", *, headers: Mapping[str, str] | None = None, method: str = "GET"
) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers=dict(headers or {}))
        answer = conn.getresponse()
        headers_ = {k.lower(): v for k, v in answer.getheaders()}
        return Response(answer.status, headers_, answer.read())
    finally:
        conn.close()


def spread(
    port: int, path: str = "/", n: int = 30, *, concurrency: int = 6, busy_s: float = 0.05
) -> list[Response]:
    """``n`` GETs, ``concurrency`` at a time, each keeping its sync worker busy ``busy_s``.

    A sync worker serves one request at a time, so concurrent slow requests reach every
    worker (sequential fast ones may all land on the same worker).
    """
    sep = "&" if "?" in path else "?"
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda _: get(port, f"{path}{sep}sleep={busy_s}"), range(n)))


@dataclass
class Gunicorn:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()


@contextlib.contextmanager
def gunicorn(
    app: str,
    *,
    port: int,
    env: Mapping[str, str],
    workers: int = 3,
    args: tuple[str, ...] = (),
    log_dir: str,
    conf: str = EXAMPLE_CONF,
    ready_timeout: float = 20.0,
    host: str = "127.0.0.1",
) -> Iterator[Gunicorn]:
    """Run ``gunicorn -c conf app`` on host:port; SIGTERM (then SIGKILL) on exit.

    ``app=""`` serves the config's own ``wsgi_app``. ``host="[::ffff:127.0.0.1]"`` listens on
    an IPv6 socket that still accepts only loopback IPv4 clients, which it reports as
    ``::ffff:127.0.0.1`` (what a server bound to ``[::]`` sees).
    """
    log_path = os.path.join(log_dir, f"gunicorn-{port}.log")
    full_env = {**os.environ, "PYTHONPATH": APPS + os.pathsep + os.environ.get("PYTHONPATH", "")}
    full_env.update(env)
    command = [
        GUNICORN,
        "-c",
        conf,
        "-b",
        f"{host}:{port}",
        "-w",
        str(workers),
        "--log-level",
        "info",
        *args,
        *([app] if app else []),
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = Gunicorn(proc, port, log_path)
    try:
        try:
            wait_for(
                lambda: proc.poll() is not None or port_open(port),
                timeout=ready_timeout,
                what="gunicorn to listen",
            )
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{server.log()}")
            wait_for(
                lambda: len(server.workers()) >= workers, timeout=ready_timeout, what="workers"
            )
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{server.log()}") from exc
        yield server
    finally:
        stop_process(proc, grace=15.0)


def stop_process(proc: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    """SIGTERM, wait ``grace`` seconds, SIGKILL the process and any child it left."""
    kids = children(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for kid in kids:
        if alive(kid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(kid, signal.SIGKILL)


@contextlib.contextmanager
def redis_server(binary: str, port: int, workdir: str) -> Iterator[subprocess.Popen[bytes]]:
    """``redis-server`` on 127.0.0.1:port, no persistence; killed on exit."""
    proc = start_redis(binary, port, workdir)
    try:
        yield proc
    finally:
        stop_process(proc)


def redis_answers(proc: subprocess.Popen[bytes], port: int) -> bool:
    """True once redis-server on ``port`` answers PING; raises if the process exited."""
    if proc.poll() is not None:
        raise RuntimeError(f"redis-server exited with {proc.returncode}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(binary: str, port: int, workdir: str) -> subprocess.Popen[bytes]:
    """``redis-server`` on 127.0.0.1:port without persistence, once it answers PING.

    The one way the tests and benchmarks start Redis (log in ``workdir/redis-<port>.log``).
    """
    with open(os.path.join(workdir, f"redis-{port}.log"), "ab") as log:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: redis_answers(proc, port), timeout=10, what="redis-server PING")
    except TimeoutError:
        stop_process(proc)
        raise
    return proc
