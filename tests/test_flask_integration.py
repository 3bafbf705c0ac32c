"""``voyagr_wsgi.flask.Voyagr`` with a real Flask app, in process (through the WSGI validator).

The gunicorn side of the same app is in ``test_flask_gunicorn.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import flask
import pytest

from conftest import Result, call, make_environ
from gunicorn_apps.flask_app import make_app
from voyagr_wsgi import Settings
from voyagr_wsgi.errors import ConfigurationError
from voyagr_wsgi.flask import Voyagr, settings_from_config
from voyagr_wsgi.gunicorn import find_stack

LOOPBACK = {"remote": "127.0.0.1", "host": "localhost"}


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"VOYAGR_STATE_DIR": str(tmp_path), **env})


def metrics(app: Any) -> dict[str, Any]:
    answer = call(app, make_environ("/api/production/metrics", **LOOPBACK))
    assert answer.code == 200, answer.body
    return dict(json.loads(answer.body))


def route_statuses(app: Any) -> dict[tuple[str, str], dict[str, int]]:
    return {(g["method"], g["route"]): g["statuses"] for g in metrics(app)["routes"].values()}


def post(app: Any, path: str, **kw: Any) -> Result:
    return call(app, make_environ(path, method="POST", **kw))


# -- set-up ---------------------------------------------------------------------------------
def test_init_app_registers_the_extension_and_wraps_wsgi_app(tmp_path: Path) -> None:
    app = flask.Flask("init_app")
    voyagr = Voyagr(settings=settings(tmp_path))
    voyagr.init_app(app)
    assert app.extensions["voyagr"] is voyagr
    assert app.wsgi_app is voyagr.stack
    assert find_stack(app) is voyagr.stack
    with pytest.raises(ConfigurationError, match="already has"):
        Voyagr(app, settings=settings(tmp_path))


def test_one_extension_serves_one_app(tmp_path: Path) -> None:
    voyagr = Voyagr(flask.Flask("first"), settings=settings(tmp_path))
    with pytest.raises(ConfigurationError, match="one app"):
        voyagr.init_app(flask.Flask("second"))


def test_gunicorn_hooks_find_the_stack_when_wsgi_app_is_wrapped_again(tmp_path: Path) -> None:
    app, voyagr = make_app(settings(tmp_path))
    inner = app.wsgi_app
    app.wsgi_app = lambda environ, start_response: inner(environ, start_response)  # type: ignore[method-assign]
    assert find_stack(app) is voyagr.stack


def test_app_config_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATE_LIMIT_REQUESTS", "50")
    monkeypatch.setenv("VOYAGR_STATE_DIR", str(tmp_path))
    app = flask.Flask("config")
    app.config.update(RATE_LIMIT_REQUESTS=3, RATE_LIMIT_HEADERS=True, CSRF_ENABLED=False)
    app.add_url_rule("/", "index", lambda: "ok")
    voyagr = Voyagr()
    voyagr.init_app(app)
    assert voyagr.settings is not None
    assert voyagr.settings.ratelimit.spec.startswith("3/")
    assert voyagr.settings.csrf_enabled is False
    codes = [call(app, make_environ("/")).code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param({"ENFORCE_HTTPS": True}, {"enforce_https": True}, id="bool"),
        pytest.param({"HSTS_MAX_AGE": 60}, {"hsts_max_age": 60}, id="int"),
        pytest.param(
            {"ALLOWED_HOSTS": ["a.example", ".b.example"]},
            {"allowed_hosts": ("a.example", ".b.example")},
            id="list",
        ),
        pytest.param({"TRUSTED_PROXIES": None}, {"trusted_proxies": ()}, id="None is unset"),
    ],
)
def test_config_values_may_be_python_values(
    config: dict[str, Any], expected: dict[str, Any]
) -> None:
    found = settings_from_config(config, {})
    assert {name: getattr(found, name) for name in expected} == expected


def test_config_dict_becomes_rate_limit_routes() -> None:
    found = settings_from_config({"RATE_LIMIT_ROUTES": {"/login": "5/minute"}}, {})
    assert found.ratelimit.routes == (("/login", "5/minute"),)


def test_unconvertible_config_value_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="HSTS_MAX_AGE"):
        settings_from_config({"HSTS_MAX_AGE": object()}, {})


def test_missing_flask_is_a_configuration_error_naming_the_extra() -> None:
    code = (
        "import sys; sys.modules['flask'] = None\n"
        "try:\n    import voyagr_wsgi.flask\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == (
        "ConfigurationError voyagr_wsgi.flask needs: pip install 'voyagr-wsgi[flask]'"
    )


# -- per-view limits ------------------------------------------------------------------------
def test_view_limit_answers_the_sixth_request_with_a_problem(tmp_path: Path) -> None:
    app, _ = make_app(settings(tmp_path))
    answers = [post(app, "/login") for _ in range(6)]
    assert [a.code for a in answers] == [200] * 5 + [429]
    assert answers[0].all("RateLimit-Policy") == ['"login";q=5;w=60', '"default";q=100;w=60']
    assert answers[4].all("RateLimit")[0] == '"login";r=0;t=12'
    denied = answers[5]
    assert denied.header("Content-Type") == "application/problem+json"
    assert denied.header("Retry-After") == "12"
    assert denied.header("RateLimit-Policy") == '"login";q=5;w=60'
    assert denied.header("RateLimit") == '"login";r=0;t=12'
    assert json.loads(denied.body) == {
        "type": "https://iana.org/assignments/http-problem-types#quota-exceeded",
        "title": "Quota Exceeded",
        "status": 429,
        "violated-policies": ["login"],
    }
    # other views and other clients keep their budgets
    assert call(app, make_environ("/users/1")).code == 200
    assert post(app, "/form").code == 200
    assert post(app, "/login", remote="203.0.113.99").code == 200


def test_stacked_view_limit_enforces_every_rate(tmp_path: Path) -> None:
    app, _ = make_app(settings(tmp_path))
    codes = [call(app, make_environ("/stacked")).code for _ in range(3)]
    assert codes == [200, 200, 429]
    first = call(make_app(settings(tmp_path))[0], make_environ("/stacked"))
    assert first.all("RateLimit-Policy")[0] == '"stacked";q=2;w=1, "stacked-2";q=3;w=3600'


def test_view_limit_applies_before_the_apps_own_hooks(tmp_path: Path) -> None:
    app, voyagr = make_app(settings(tmp_path))
    limited = voyagr.limit("2/minute")(app.view_functions["private"])
    app.view_functions["private"] = limited
    app.add_url_rule("/other", "other", lambda: "x")  # views changed: marks are read again
    codes = [call(app, make_environ("/private/1")).code for _ in range(3)]
    assert codes == [401, 401, 429]


@pytest.mark.parametrize(
    "spec",
    [
        "5/minute",
        "5 per minute",
        "5/60s",
        "10/second;100/hour",
        "1 per 2 minutes",
        "10/second, 100/hour",
    ],
)
def test_limit_accepts_flask_limiter_specs(spec: str) -> None:
    Voyagr().limit(spec)


def test_limit_refuses_a_bad_spec() -> None:
    with pytest.raises(ConfigurationError, match=r"voyagr\.limit"):
        Voyagr().limit("five a minute")


# -- exemptions -----------------------------------------------------------------------------
def test_exempt_view_is_never_limited_by_the_global_limit(tmp_path: Path) -> None:
    app, _ = make_app(settings(tmp_path, RATE_LIMIT_REQUESTS="2"))
    assert [call(app, make_environ("/assets/a.css")).code for _ in range(5)] == [200] * 5
    assert call(app, make_environ("/assets/a.css")).header("RateLimit") is None
    codes = [call(app, make_environ("/users/1")).code for _ in range(3)]
    assert codes == [200, 200, 429]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/assets/a/b", id="same prefix, no rule"),
        pytest.param("/assets", id="prefix without the slash"),
        pytest.param("//assets/a.css", id="doubled slash"),
    ],
)
def test_exemption_does_not_widen_to_other_paths(tmp_path: Path, path: str) -> None:
    app, _ = make_app(settings(tmp_path, RATE_LIMIT_REQUESTS="1"))
    answers = [call(app, make_environ(path)) for _ in range(2)]
    assert answers[1].code == 429


def test_csrf_exempt_view_accepts_a_cross_site_post(tmp_path: Path) -> None:
    app, _ = make_app(settings(tmp_path))
    cross = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    assert post(app, "/hooks/7", headers=cross).code == 200
    assert post(app, "/form", headers=cross).code == 403
    assert post(app, "/hooks/x", headers=cross).code == 403  # not the rule's converter


# -- route labels and errors ----------------------------------------------------------------
def test_every_request_is_labelled_with_its_rule(tmp_path: Path) -> None:
    app, _ = make_app(settings(tmp_path, RATE_LIMIT_REQUESTS="3"))
    assert call(app, make_environ("/private/3")).code == 401
    assert call(app, make_environ("/users/1")).code == 200
    assert call(app, make_environ("/users/2")).code == 200
    assert call(app, make_environ("/users/3")).code == 429  # the layer answers: labelled too
    assert call(app, make_environ("/users/4", method="DELETE")).code == 429
    assert call(app, make_environ("/wp-admin/setup.php")).code == 429
    found = route_statuses(app)
    assert found[("GET", "/private/<int:item>")] == {"401": 1}
    assert found[("GET", "/users/<int:user_id>")] == {"200": 2, "429": 1}
    assert found[("DELETE", "/users/<int:user_id>")] == {"429": 1}
    assert found[("GET", "__unmatched__")] == {"429": 1}


def test_405_and_404_answered_by_flask_keep_their_labels(tmp_path: Path) -> None:
    app, _ = make_app(settings(tmp_path, RATE_LIMIT_ENABLED="false"))
    assert call(app, make_environ("/users/4", method="DELETE")).code == 405
    assert call(app, make_environ("/nothing")).code == 404
    found = route_statuses(app)
    assert found[("DELETE", "/users/<int:user_id>")] == {"405": 1}
    assert found[("GET", "__unmatched__")] == {"404": 1}


def test_view_exception_is_recorded_by_type_with_its_traceback(tmp_path: Path) -> None:
    app, _ = make_app(settings(tmp_path))
    assert call(app, make_environ("/boom")).code == 500
    errors = metrics(app)["errors"]
    assert errors["by_type"] == {"KeyError": 1}
    (recent,) = errors["recent"]
    assert recent["route"] == "/boom"
    assert any("in boom" in frame for frame in recent["traceback"])


def test_the_documented_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import voyagr_wsgi.flask

    doc = voyagr_wsgi.flask.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n**", 1)[0]
    source = "\n".join(line[4:] for line in block.splitlines())
    monkeypatch.setenv("VOYAGR_STATE_DIR", str(tmp_path))
    namespace: dict[str, Any] = {"__name__": "documented_example"}
    exec(compile(source, "voyagr_wsgi.flask docstring", "exec"), namespace)
    app = namespace["app"]
    assert [post(app, "/login").code for _ in range(6)] == [200] * 5 + [429]
    assert call(app, make_environ("/static-ish/a.css")).body == b"a.css"
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert post(app, "/hooks/stripe", headers=cross).code == 200
