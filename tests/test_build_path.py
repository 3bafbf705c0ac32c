"""One build path: each layer built once, one Stack, areas load only when turned on, and a
setting that needs a missing extra names the extra."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from conftest import call, hello_app, make_environ
from voyagr_wsgi import Settings, compose
from voyagr_wsgi._layer import Layer
from voyagr_wsgi.areas import AREAS, build_context
from voyagr_wsgi.compose import DEFAULT_ORDER, Stack
from voyagr_wsgi.layers import HostCheck


def run_python(code: str) -> Any:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON."""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


BLOCK = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None\n"


def test_importing_one_layer_loads_that_layer_and_its_helpers_only() -> None:
    loaded = run_python(
        "import sys, json\n"
        "from voyagr_wsgi.layers import HostCheck\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('voyagr_wsgi', "
        "'sqlite3', 'smtplib', 'boto3', 'redis', 'werkzeug')))))"
    )
    assert loaded == [
        "voyagr_wsgi",
        "voyagr_wsgi._layer",
        "voyagr_wsgi._lazy",
        "voyagr_wsgi._version",
        "voyagr_wsgi._wsgi",
        "voyagr_wsgi.compose",
        "voyagr_wsgi.counters",
        "voyagr_wsgi.errors",
        "voyagr_wsgi.layers",
        "voyagr_wsgi.layers.host_check",
        "voyagr_wsgi.problem",
        "voyagr_wsgi.request",
    ]


@pytest.mark.parametrize("name", sorted(__import__("voyagr_wsgi.layers").layers.__all__))
def test_each_layer_imports_without_settings_or_areas(name: str) -> None:
    loaded = run_python(
        "import sys, json\n"
        f"from voyagr_wsgi.layers import {name}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('voyagr_wsgi'))))"
    )
    for heavy in (
        "voyagr_wsgi.settings",
        "voyagr_wsgi.areas",
        "voyagr_wsgi.backups.manager",
        "voyagr_wsgi.alerts.dispatcher",
        "voyagr_wsgi.ratelimit.redis_store",
    ):
        assert heavy not in loaded, (name, heavy)


def test_default_stack_loads_no_backup_redis_s3_or_smtp_code() -> None:
    loaded = run_python(
        "import sys, json\n"
        "from voyagr_wsgi import Settings, compose\n"
        "compose(lambda e, s: [], Settings.from_env({}))\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    for heavy in ("sqlite3", "smtplib", "boto3", "redis", "voyagr_wsgi.backups.manager"):
        assert heavy not in loaded, heavy
    assert "voyagr_wsgi.alerts.dispatcher" in loaded  # alerts are on by default (to the log)


def test_default_stack_composes_and_serves_without_redis_or_boto3() -> None:
    """The plain-install bug: ``compose`` imported redis before knowing the store."""
    doc = run_python(
        BLOCK.format(names=["redis", "boto3", "botocore"])
        + "import json\n"
        "from voyagr_wsgi import Settings, compose\n"
        "from wsgiref.util import setup_testing_defaults\n"
        "stack = compose(lambda e, s: (s('200 OK', []), [b'ok'])[1], Settings.from_env({}))\n"
        "env = {}; setup_testing_defaults(env); seen = []\n"
        "body = b''.join(stack(env, lambda st, h, e=None: seen.append((st, h))))\n"
        "print(json.dumps([seen[0][0], body.decode(), [k for k, v in seen[0][1]]]))"
    )
    assert doc[0] == "200 OK" and doc[1] == "ok"
    assert "X-Content-Type-Options" in doc[2] and "RateLimit" in doc[2]


@pytest.mark.parametrize(
    ("blocked", "env", "message"),
    [
        pytest.param(
            ["redis"],
            {"RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0"},
            "RATE_LIMIT_STORAGE=redis://... needs: pip install 'voyagr-wsgi[redis]'",
            id="redis store without the redis extra",
        ),
        pytest.param(
            ["boto3", "botocore"],
            {
                "DATABASE_PATH": "app.db",
                "S3_BACKUP_ENABLED": "true",
                "S3_BUCKET": "b",
                "AWS_ACCESS_KEY_ID": "k",
                "AWS_SECRET_ACCESS_KEY": "s",
            },
            "S3_BACKUP_ENABLED=true needs: pip install 'voyagr-wsgi[s3]'",
            id="S3 backups without the s3 extra",
        ),
    ],
)
def test_a_setting_that_needs_a_missing_extra_names_it(
    blocked: list[str], env: dict[str, str], message: str, tmp_path: Any
) -> None:
    doc = run_python(
        BLOCK.format(names=blocked)
        + "import json, os\n"
        f"os.chdir({str(tmp_path)!r})\n"
        "from voyagr_wsgi import ConfigurationError, Settings, compose\n"
        "try:\n"
        f"    compose(lambda e, s: [], Settings.from_env({env!r}))\n"
        "except ConfigurationError as exc:\n"
        "    print(json.dumps(str(exc)))\n"
        "else:\n"
        "    print(json.dumps('built'))\n"
    )
    assert doc == message


def test_compose_with_settings_builds_each_layer_once_and_one_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = {"HostCheck": 0, "Stack": 0}
    host_init, stack_init = HostCheck.__init__, Stack.__init__

    def counting_host(self: Any, *args: Any, **kwargs: Any) -> None:
        counts["HostCheck"] += 1
        host_init(self, *args, **kwargs)

    def counting_stack(self: Any, *args: Any, **kwargs: Any) -> None:
        counts["Stack"] += 1
        stack_init(self, *args, **kwargs)

    monkeypatch.setattr(HostCheck, "__init__", counting_host)
    monkeypatch.setattr(Stack, "__init__", counting_stack)
    stack = compose(hello_app, Settings(allowed_hosts=("example.com",)))
    assert counts == {"HostCheck": 1, "Stack": 1}
    assert call(stack, make_environ("/", host="evil.test")).code == 400


def test_explicit_layers_are_not_rebuilt_and_stay_reusable() -> None:
    built: list[str] = []

    class Tag(Layer):
        def __init__(self, app: Any = None, /, *, name: str) -> None:
            self._init(app, {"name": name})
            built.append(name)
            self.name = name

        def __call__(self, environ: Any, start_response: Any) -> Any:
            environ.setdefault("tags", []).append(self.name)
            return self._next(environ, start_response)

    outer, inner = Tag(name="outer"), Tag(name="inner")
    first = compose(hello_app, outer, inner)
    second = compose(hello_app, outer, inner)
    assert built == ["outer", "inner"]
    assert not outer.bound and first.layers[0] is not outer
    for stack in (first, second):
        result = call(stack, make_environ("/"))
        assert result.environ["tags"] == ["outer", "inner"]


def test_every_area_layer_has_a_place_in_the_default_order(tmp_path: Any) -> None:
    settings = Settings.from_env(
        {"ENFORCE_HTTPS": "true", "DATABASE_PATH": str(tmp_path / "app.db")}
    )
    context = build_context(settings)
    names = [type(layer).__name__ for layer in context.layers]
    assert names == list(DEFAULT_ORDER)
    assert [layer.bound for layer in context.layers] == [False] * len(names)
    assert set(context.components()) == {"metrics", "backups", "alerts", "ratelimit"}
    assert len(AREAS) == 5


def test_areas_hand_each_other_typed_objects(tmp_path: Any) -> None:
    settings = Settings.from_env({"DATABASE_PATH": str(tmp_path / "app.db")})
    stack = compose(hello_app, settings)
    alerts = stack.components["alerts"]
    assert alerts.metrics.registry is stack.components["metrics"]  # read merged, by a reader
    assert alerts.backups is stack.components["backups"]
    assert stack.components["ratelimit"] is stack.layer("RateLimit").store
