"""voyagr_wsgi.django with a real Django project (tests/django_project), in-process through
wsgiref.validate.validator: per-view limits, exemptions, route labels, view exceptions,
settings from settings.VOYAGR and the CSRF cookie."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import django_project
from conftest import Result, call, make_environ
from voyagr_wsgi import ConfigurationError, Settings

django_project.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from voyagr_wsgi.compose import Stack  # noqa: E402
from voyagr_wsgi.django import settings_from_django, wrap  # noqa: E402


def request(stack: Stack, path: str, **kw: Any) -> Result:
    kw.setdefault("host", "localhost")
    kw.setdefault("remote", "127.0.0.1")
    return call(stack, make_environ(path, **kw))


def metrics(stack: Stack) -> dict[str, Any]:
    result = request(stack, "/api/production/metrics", remote="127.0.0.9")  # own budget
    assert result.code == 200, result.body
    return json.loads(result.body)  # type: ignore[no-any-return]


def routes(stack: Stack) -> dict[str, dict[str, int]]:
    """route -> {status: count} (every method)."""
    found: dict[str, dict[str, int]] = {}
    for row in metrics(stack)["routes"].values():
        found.setdefault(row["route"], {}).update(row["statuses"])
    return found


def stack_with(**voyagr: Any) -> Stack:
    from django.conf import settings

    with override_settings(VOYAGR={**settings.VOYAGR, **voyagr}):
        return wrap(get_wsgi_application())


@pytest.fixture
def stack() -> Iterator[Stack]:
    yield stack_with()


# -- per-view limits ------------------------------------------------------------------------
def test_per_view_limit_answers_429_problem_json_after_its_own_budget(stack: Stack) -> None:
    allowed = [request(stack, "/login/") for _ in range(3)]
    assert [r.code for r in allowed] == [200, 200, 200]
    assert '"login";q=3;w=60' in allowed[0].header("RateLimit-Policy")  # type: ignore[operator]
    assert '"login";r=0' in " ".join(allowed[2].all("RateLimit"))
    denied = request(stack, "/login/")
    assert denied.code == 429
    assert denied.header("Content-Type") == "application/problem+json"
    problem = json.loads(denied.body)
    assert problem["status"] == 429
    assert problem["type"].endswith("#quota-exceeded")
    assert problem["violated-policies"] == ["login"]
    assert int(denied.header("Retry-After") or "0") >= 1
    assert '"login";r=0;t=' in " ".join(denied.all("RateLimit"))
    # its own budget: another view and another client are untouched
    assert request(stack, "/plain/").code == 200
    assert request(stack, "/login/", remote="198.51.100.4").code == 200


def test_stacked_view_limit_enforces_the_tighter_rate(stack: Stack) -> None:
    codes = [request(stack, "/api/search/").code for _ in range(3)]
    assert codes == [200, 200, 429]
    last = request(stack, "/api/search/")
    assert json.loads(last.body)["violated-policies"] == ["search"]
    ok = request(stack, "/api/search/", remote="198.51.100.5")
    assert '"search";q=2;w=60, "search-2";q=5;w=3600' in ok.all("RateLimit-Policy")


def test_views_of_one_group_share_a_budget(stack: Stack) -> None:
    assert request(stack, "/export.csv").code == 200
    assert request(stack, "/export.json").code == 200
    assert request(stack, "/export.csv").code == 429
    assert request(stack, "/export.json").code == 429
    assert request(stack, "/login/").code == 200  # another view: its own budget


def test_view_limit_without_wrap_decides_in_a_process_store() -> None:
    client = Client(REMOTE_ADDR="192.0.2.77")
    codes = [client.get("/login/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


# -- exemptions -----------------------------------------------------------------------------
def test_exempt_view_skips_the_global_rate_limit_while_others_hit_it() -> None:
    stack = stack_with(RATE_LIMIT_REQUESTS=2)
    pings = [request(stack, f"/ping/{n}/") for n in range(5)]
    assert [r.code for r in pings] == [200] * 5
    assert all(r.header("RateLimit") is None for r in pings)
    assert [request(stack, "/plain/").code for _ in range(3)] == [200, 200, 429]


def test_csrf_exempt_view_takes_a_cross_site_post_others_get_403(stack: Stack) -> None:
    cross = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    assert request(stack, "/webhook/", method="POST", headers=cross).code == 200
    assert request(stack, "/form/", method="POST", headers=cross).code == 403
    same = {"Sec-Fetch-Site": "same-origin"}
    assert request(stack, "/form/", method="POST", headers=same).code == 200


def test_without_marked_views_the_layers_stay_as_compose_chained_them() -> None:
    from django.urls import path

    from django_project import views

    urls = type("urls", (), {"urlpatterns": [path("plain/", views.plain)]})
    with override_settings(ROOT_URLCONF=urls):
        stack = wrap(get_wsgi_application())
        inner = stack.layer("CrossOriginProtection")._next
        assert inner.__self__ is stack.layer("RateLimit")  # no switch: as compose made it
        assert request(stack, "/plain/").code == 200


# -- route labels ---------------------------------------------------------------------------
def test_route_labels_for_views_early_answers_404s_and_429s() -> None:
    stack = stack_with(RATE_LIMIT_REQUESTS=2)
    assert request(stack, "/api/users/7/").code == 200
    assert request(stack, "/api/users/8/").code == 200
    assert request(stack, "/api/users/9/").code == 429  # the layer, before Django
    assert request(stack, "/api/users/404/", remote="198.51.100.6").code == 404  # Http404
    assert request(stack, "/private/", remote="198.51.100.6").code == 401  # a middleware
    assert request(stack, "/nowhere/", remote="198.51.100.7").code == 404
    assert request(stack, "/login/", remote="198.51.100.7").code == 200
    assert routes(stack) == {
        "/api/users/<int:user_id>/": {"200": 2, "429": 1, "404": 1},
        "/private/": {"401": 1},
        "__unmatched__": {"404": 1},
        "/login/": {"200": 1},
    }


def test_route_label_of_a_403_from_cross_origin_protection(stack: Stack) -> None:
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert request(stack, "/form/", method="POST", headers=cross).code == 403
    assert routes(stack) == {"/form/": {"403": 1}}


def test_route_label_of_the_root_route_is_a_slash() -> None:
    from django.urls import path

    from django_project import views

    urls = type("urls", (), {"urlpatterns": [path("", views.plain)]})
    with override_settings(ROOT_URLCONF=urls):
        stack = wrap(get_wsgi_application())
        assert request(stack, "/").code == 200
        assert routes(stack) == {"/": {"200": 1}}


# -- view exceptions ------------------------------------------------------------------------
def test_view_exception_is_recorded_by_type_with_its_traceback(stack: Stack) -> None:
    result = request(stack, "/boom/")
    assert result.code == 500  # Django's 500 page: the exception never reaches the layer
    errors = metrics(stack)["errors"]
    assert errors["by_type"] == {"LookupError": 1}
    (recent,) = errors["recent"]
    assert recent["route"] == "/boom/"
    assert recent["message"] == "the view failed"
    assert recent["traceback"][-1].endswith(" in boom")
    assert "django_project/views.py" in recent["traceback"][-1]


def test_a_handled_404_records_no_exception(stack: Stack) -> None:
    assert request(stack, "/api/users/404/").code == 404
    assert metrics(stack)["errors"]["by_type"] == {}


# -- cookies --------------------------------------------------------------------------------
def test_csrftoken_cookie_stays_js_readable_while_other_cookies_get_httponly(
    stack: Stack,
) -> None:
    result = request(stack, "/token/", scheme="https", host="localhost")
    cookies = {c.split("=", 1)[0].strip(): c for c in result.all("Set-Cookie")}
    assert set(cookies) == {"csrftoken", "prefs"}
    assert "httponly" not in cookies["csrftoken"].lower()
    assert "; Secure" in cookies["csrftoken"]
    assert "; HttpOnly" in cookies["prefs"]
    assert json.loads(result.body)["csrf"]  # Django's token; its cookie is what JS reads


@pytest.mark.parametrize(
    ("django_settings", "expected"),
    [
        pytest.param({}, ("csrftoken",), id="default"),
        pytest.param({"CSRF_COOKIE_HTTPONLY": True}, (), id="CSRF_COOKIE_HTTPONLY"),
        pytest.param({"CSRF_COOKIE_NAME": "xsrf"}, ("xsrf",), id="CSRF_COOKIE_NAME"),
        pytest.param(
            {"VOYAGR": {"SECURE_COOKIES_HTTPONLY_EXEMPT": ["theme"]}},
            ("theme", "csrftoken"),
            id="added to the user's names",
        ),
    ],
)
def test_csrf_cookie_exemption_follows_django_settings(
    django_settings: dict[str, Any], expected: tuple[str, ...]
) -> None:
    with override_settings(**django_settings):
        found = settings_from_django(environ={}).secure_cookies_httponly_exempt
    assert found == expected


# -- settings -------------------------------------------------------------------------------
def test_voyagr_dict_wins_over_the_environment_and_takes_python_values() -> None:
    voyagr = {"RATE_LIMIT_REQUESTS": 9, "ENFORCE_HTTPS": True, "ALLOWED_HOSTS": ["a.example"]}
    with override_settings(VOYAGR=voyagr):
        settings = settings_from_django(
            environ={"RATE_LIMIT_REQUESTS": "7", "HSTS_MAX_AGE": "5", "ENFORCE_HTTPS": "false"}
        )
    assert isinstance(settings, Settings)
    assert settings.ratelimit.requests == 9
    assert settings.enforce_https is True
    assert settings.allowed_hosts == ("a.example",)
    assert settings.hsts_max_age == 5  # from the environment


@pytest.mark.parametrize(
    ("voyagr", "match"),
    [
        pytest.param(["RATE_LIMIT_REQUESTS"], "settings.VOYAGR", id="not a dict"),
        pytest.param({"RATE_LIMIT_REQUESTS": None}, "RATE_LIMIT_REQUESTS", id="None value"),
        pytest.param({"RATE_LIMIT_REQUESTS": "lots"}, "RATE_LIMIT_REQUESTS", id="bad value"),
    ],
)
def test_bad_voyagr_settings_raise_naming_the_variable(voyagr: Any, match: str) -> None:
    with override_settings(VOYAGR=voyagr), pytest.raises(ConfigurationError, match=match):
        settings_from_django(environ={})


def test_exported_members_resolve_lazily() -> None:
    import voyagr_wsgi.django as integration

    assert set(integration.__all__) == set(integration._WHERE)
    for name in integration.__all__:
        assert callable(getattr(integration, name)), name
    assert set(integration.__all__) <= set(dir(integration))
    with pytest.raises(AttributeError):
        getattr(integration, "voyagr_nothing")
