from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from voyagr_wsgi.services import FileLock, Supervisor


class Recorder:
    def __init__(self, name: str, singleton: bool) -> None:
        self.name = name
        self.singleton = singleton
        self.started = threading.Event()
        self.stopped = threading.Event()

    def start(self) -> None:
        self.started.set()

    def stop(self, timeout: float | None = None) -> None:
        self.stopped.set()

    def state(self) -> dict[str, Any]:
        return {"started": self.started.is_set()}


def test_file_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    path = str(tmp_path / "x.lock")
    a, b = FileLock(path), FileLock(path)
    assert a.try_acquire()
    assert not b.try_acquire()
    a.release()
    assert b.try_acquire()
    b.release()


def test_lock_held_by_another_process_blocks_until_it_dies(tmp_path: Path) -> None:
    path = str(tmp_path / "x.lock")
    code = (
        "import sys,time; from voyagr_wsgi.services import FileLock; "
        f"l=FileLock({path!r}); print(l.try_acquire(), flush=True); sys.stdin.read()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "True"
            assert not FileLock(path).try_acquire()
            proc.kill()
            proc.wait(10)
            lock = FileLock(path)
            assert lock.try_acquire()
            lock.release()
        finally:
            proc.kill()
            proc.wait(10)


def test_supervisor_runs_singletons_only_in_the_lock_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "services.lock")
    local1, single1 = Recorder("local", False), Recorder("single", True)
    local2, single2 = Recorder("local", False), Recorder("single", True)
    first = Supervisor([local1, single1], lock_path=path, retry_s=0.05)
    second = Supervisor([local2, single2], lock_path=path, retry_s=0.05)
    first.start()
    assert single1.started.wait(5)
    second.start()
    assert local2.started.is_set()
    assert not single2.started.wait(0.3)
    first.stop(timeout=5)
    assert single1.stopped.is_set() and local1.stopped.is_set()
    assert single2.started.wait(5), "the second supervisor takes over when the first stops"
    assert second.state()["leader"] is True
    second.stop(timeout=5)
    assert single2.stopped.is_set()


def test_start_twice_starts_each_service_once(tmp_path: Path) -> None:
    starts: list[str] = []

    class Counting(Recorder):
        def start(self) -> None:
            starts.append(self.name)
            super().start()

    supervisor = Supervisor([Counting("local", False)], lock_path=str(tmp_path / "l.lock"))
    supervisor.start()
    supervisor.start()
    assert starts == ["local"]
    supervisor.stop(timeout=1)
    supervisor.start()
    assert starts == ["local", "local"], "a stopped supervisor can start again"
    supervisor.stop(timeout=1)
