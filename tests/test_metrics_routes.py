"""Route templates from Flask's url_rule and Django's resolver_match, and pattern tables."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import call, make_environ
from voyagr_wsgi.layers import Metrics
from voyagr_wsgi.metrics.registry import UNMATCHED, Registry
from voyagr_wsgi.metrics.routes import RoutePatterns, flask_route


def routes_of(registry: Registry) -> dict[tuple[str, int], int]:
    return {(row.route, row.status): row.requests for row in registry.snapshot().series}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/users/42", "/users/{id}", id="curly param"),
        pytest.param("/users/42/trips/7", "/users/<int:uid>/trips/<tid>", id="flask-style"),
        pytest.param("/static/css/site.css", "/static/{file:path}", id="path param"),
        pytest.param("/users/", None, id="empty segment does not match"),
        pytest.param("/users/4.2", "/users/{id}", id="any segment text"),
        pytest.param("/about", "/about", id="literal"),
        pytest.param("/about/", None, id="no trailing-slash variant"),
    ],
)
def test_route_patterns_pick_the_first_matching_template(path: str, expected: str | None) -> None:
    patterns = RoutePatterns(
        ["/users/{id}", "/users/<int:uid>/trips/<tid>", "/static/{file:path}", "/about"]
    )
    assert patterns.match(path) == expected


def test_flask_route_helper_labels_requests_with_the_url_rule() -> None:
    import flask

    app = flask.Flask("routes_test")

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> str:
        return str(user_id)

    flask_route(app)
    registry = Registry()
    wrapped = Metrics(app.wsgi_app, registry=registry)
    assert call(wrapped, make_environ("/users/1")).code == 200
    assert call(wrapped, make_environ("/users/2")).code == 200
    assert call(wrapped, make_environ("/wp-admin/setup.php")).code == 404
    assert routes_of(registry) == {("/users/<int:user_id>", 200): 2, (UNMATCHED, 404): 1}


@pytest.fixture
def django_app() -> Any:
    """Django's handler with only DjangoRouteMiddleware and this module's URLconf (Django's
    settings are process-wide: the test project's, overridden here)."""
    import django_project

    django_project.setup()
    from django.core.wsgi import get_wsgi_application
    from django.test import override_settings

    middleware = ["voyagr_wsgi.metrics.routes.DjangoRouteMiddleware"]
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=middleware):
        yield get_wsgi_application()


def _trip(request: Any, trip_id: int) -> Any:
    from django.http import HttpResponse

    return HttpResponse(str(trip_id))


def __getattr__(name: str) -> Any:  # Django reads ROOT_URLCONF's urlpatterns lazily
    if name == "urlpatterns":
        from django.urls import path

        return [path("trips/<int:trip_id>/", _trip)]
    raise AttributeError(name)


def test_django_middleware_labels_requests_with_the_resolver_route(django_app: Any) -> None:
    registry = Registry()
    wrapped = Metrics(django_app, registry=registry)
    assert call(wrapped, make_environ("/trips/9/")).code == 200
    assert call(wrapped, make_environ("/nope/")).code == 404
    assert routes_of(registry) == {("/trips/<int:trip_id>/", 200): 1, (UNMATCHED, 404): 1}


def test_flask_route_labels_requests_a_before_request_hook_answers() -> None:
    import flask

    app = flask.Flask("routes_hook_test")

    @app.before_request
    def deny() -> tuple[str, int]:
        return "unauthorized", 401

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> str:
        return str(user_id)

    flask_route(app)
    registry = Registry()
    wrapped = Metrics(app.wsgi_app, registry=registry)
    assert call(wrapped, make_environ("/users/1")).code == 401
    assert call(wrapped, make_environ("/users/1", method="DELETE")).code == 401
    series = {(r.method, r.route, r.status): r.requests for r in registry.snapshot().series}
    assert series == {("GET", "/users/<int:user_id>", 401): 1,
                      ("DELETE", "/users/<int:user_id>", 401): 1}  # fmt: skip
