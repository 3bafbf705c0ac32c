from __future__ import annotations

from typing import Any

import pytest

import voyagr_wsgi
from conftest import call, hello_app
from voyagr_wsgi import ConfigurationError, Settings, compose
from voyagr_wsgi.compose import DEFAULT_ORDER


def test_exported_members() -> None:
    public = {n for n in vars(voyagr_wsgi) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(voyagr_wsgi, n)).__name__ == "module"}
    assert public - modules <= set(voyagr_wsgi.__all__)
    for name in voyagr_wsgi.__all__:
        assert hasattr(voyagr_wsgi, name), name


def test_default_order_is_documented_order() -> None:
    assert DEFAULT_ORDER == (
        "ProxyTrust",
        "Metrics",
        "Probe",
        "HostCheck",
        "HTTPSRedirect",
        "SecurityHeaders",
        "CrossOriginProtection",
        "RateLimit",
        "Admin",
    )


def test_first_listed_layer_is_outermost() -> None:
    seen: list[str] = []

    def tag(name: str) -> Any:
        def factory(app: Any) -> Any:
            def wrapped(environ: Any, start_response: Any) -> Any:
                seen.append(name)
                return app(environ, start_response)

            return wrapped

        return factory

    stack = compose(hello_app, tag("outer"), tag("middle"), tag("inner"))
    assert call(stack).code == 200
    assert seen == ["outer", "middle", "inner"]


def test_compose_rejects_settings_mixed_with_layers() -> None:
    with pytest.raises(ConfigurationError):
        compose(hello_app, Settings(), lambda a: a)


def test_stack_start_and_stop_without_services() -> None:
    stack = compose(hello_app, Settings())
    stack.start()
    stack.stop(timeout=1)
    assert call(stack).body == b"hello"


def test_nothing_starts_at_import_or_compose(tmp_path: Any) -> None:
    """No thread, file or socket until stack.start(): checked in a fresh interpreter."""
    import subprocess
    import sys

    code = """
import importlib, os, pkgutil, threading
import voyagr_wsgi
for m in pkgutil.walk_packages(voyagr_wsgi.__path__, "voyagr_wsgi."):
    importlib.import_module(m.name)
from voyagr_wsgi import Settings, compose
stack = compose(lambda e, s: [], Settings.from_env({"DATABASE_PATH": "app.db"}))
print(threading.active_count(), sorted(os.listdir(".")))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1 []"
