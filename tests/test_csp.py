"""ContentSecurityPolicy builder, the lazy nonce, and the CSP headers SecurityHeaders sends."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import call, hello_app, make_environ
from voyagr_wsgi import ConfigurationError
from voyagr_wsgi.layers import ContentSecurityPolicy, SecurityHeaders
from voyagr_wsgi.layers.csp import CSP_NONCE, LazyNonce


@pytest.mark.parametrize(
    "policy, complaint",
    [
        pytest.param({"default-src": "self"}, "must be quoted", id="unquoted self"),
        pytest.param({"default-src": "none"}, "must be quoted", id="unquoted none"),
        pytest.param(
            {"default-src": "'self'", "script-src": "unsafe-inline"},
            "must be quoted",
            id="unquoted unsafe-inline",
        ),
        pytest.param(
            {"default-src": "'self'", "script-src": "nonce-abc123"},
            "must be quoted",
            id="unquoted nonce",
        ),
        pytest.param(
            {"default-src": "'self'", "script-src": "sha256-AbC+/="},
            "must be quoted",
            id="unquoted hash",
        ),
        pytest.param({"default-src": "'selfish'"}, "unknown keyword", id="unknown quoted keyword"),
        pytest.param({"default-src": ["'self';", "img-src"]}, "malformed", id="semicolon in value"),
        pytest.param({"default-src": ["'self',", "https:"]}, "malformed", id="comma in value"),
        pytest.param({"default-src": ["'self'", "a\r\nb"]}, "malformed", id="CRLF in value"),
        pytest.param({"default-src": ["'self'", ""]}, "malformed", id="empty value"),
        pytest.param({"default-src": ["'none'", "'self'"]}, "only source", id="none mixed"),
        pytest.param({"img-src": "'self'"}, "default-src", id="missing default-src"),
        pytest.param(
            {"default-src": "'self'", "img-scr": "*"},
            "unknown directive",
            id="misspelled directive",
        ),
        pytest.param(
            {"default-src": "'self'", "default_src": "'self'"},
            "twice",
            id="duplicate after normalising",
        ),
        pytest.param(
            {"default-src": "'self'", "script-src": []},
            "at least one source",
            id="empty source list",
        ),
        pytest.param(
            {"default-src": "'self'", "upgrade-insecure-requests": "yes"},
            "takes no value",
            id="value on upgrade-insecure-requests",
        ),
    ],
)
def test_builder_rejects_malformed_policies(policy: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        ContentSecurityPolicy(policy)


@pytest.mark.parametrize(
    "text, complaint",
    [
        pytest.param("default-src 'self'; default-src *", "twice", id="duplicate directive"),
        pytest.param("default-src 'self'; DEFAULT-SRC *", "twice", id="duplicate, other case"),
        pytest.param("img-src 'self'", "default-src", id="no default-src"),
        pytest.param("default-src self", "must be quoted", id="unquoted keyword"),
        pytest.param("default-src 'self', img-src *", "malformed", id="comma as separator"),
        pytest.param("default-src 'self'; frame-src", "at least one source", id="empty frame-src"),
    ],
)
def test_parse_rejects_malformed_policy_strings(text: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        ContentSecurityPolicy.parse(text)


@pytest.mark.parametrize(
    "policy, rendered",
    [
        pytest.param({"default-src": "'self'"}, "default-src 'self'", id="minimal"),
        pytest.param(
            {
                "default_src": ["'self'", "https://cdn.example.com"],
                "img-src": "'self' data:",
                "upgrade-insecure-requests": True,
                "object-src": None,
            },
            "default-src 'self' https://cdn.example.com; img-src 'self' data:; "
            "upgrade-insecure-requests",
            id="lists, strings, flags, None skipped",
        ),
        pytest.param(
            {"default-src": "'none'", "sandbox": True, "report-uri": "/csp-report"},
            "default-src 'none'; sandbox; report-uri /csp-report",
            id="non-source directives",
        ),
        pytest.param(
            {"default-src": "'self'", "script-src": "'sha256-AbC+/=' 'strict-dynamic'"},
            "default-src 'self'; script-src 'sha256-AbC+/=' 'strict-dynamic'",
            id="hashes and strict-dynamic",
        ),
    ],
)
def test_builder_renders_valid_policies(policy: dict[str, Any], rendered: str) -> None:
    built = ContentSecurityPolicy(policy)
    assert built.render() == rendered
    assert ContentSecurityPolicy.parse(rendered) == built


@pytest.mark.parametrize(
    "policy, directives, expected",
    [
        pytest.param(
            "default-src 'self'; script-src 'self'",
            ("script-src",),
            "default-src 'self'; script-src 'self' 'nonce-N'",
            id="appended",
        ),
        pytest.param(
            "default-src 'self' data:",
            ("script-src",),
            "default-src 'self' data:; script-src 'self' data: 'nonce-N'",
            id="missing directive copies default-src",
        ),
        pytest.param(
            "default-src 'none'",
            ("script-src", "style-src"),
            "default-src 'none'; script-src 'nonce-N'; style-src 'nonce-N'",
            id="'none' replaced by the nonce",
        ),
    ],
)
def test_nonce_goes_into_the_named_directives(
    policy: str, directives: tuple[str, ...], expected: str
) -> None:
    built = ContentSecurityPolicy.parse(policy)
    assert built.render(nonce="N", nonce_directives=directives) == expected


def test_lazy_nonce_is_created_on_first_use_only() -> None:
    nonce = LazyNonce()
    assert not nonce.used
    value = str(nonce)
    assert nonce.used and len(value) >= 22 and str(nonce) == value == f"{nonce}"
    assert str(LazyNonce()) != value


def _page_app(use_nonce: bool, cache_control: str | None = None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = b"<p>hi</p>"
        if use_nonce:
            body = f'<script nonce="{environ[CSP_NONCE]}"></script>'.encode()
        headers = [("Content-Type", "text/html")]
        if cache_control:
            headers.append(("Cache-Control", cache_control))
        start_response("200 OK", headers)
        return [body]

    return app


def test_unused_nonce_stays_out_of_the_header_and_cache_control() -> None:
    result = call(SecurityHeaders(_page_app(False), csp_nonce=True), make_environ())
    assert "nonce-" not in (result.header("Content-Security-Policy") or "")
    assert result.header("Cache-Control") is None
    assert isinstance(result.environ[CSP_NONCE], LazyNonce)


def test_used_nonce_is_in_the_header_and_matches_the_body() -> None:
    result = call(SecurityHeaders(_page_app(True), csp_nonce=True), make_environ())
    nonce = str(result.environ[CSP_NONCE])
    csp = result.header("Content-Security-Policy") or ""
    assert f"script-src 'self' 'nonce-{nonce}'" in csp
    assert f'nonce="{nonce}"'.encode() in result.body
    assert result.all("Cache-Control") == ["no-store"]


def test_used_nonce_keeps_the_apps_cache_control() -> None:
    app = SecurityHeaders(_page_app(True, "private, max-age=0"), csp_nonce=True)
    result = call(app, make_environ())
    assert result.all("Cache-Control") == ["private, max-age=0"]


def test_each_request_gets_its_own_nonce() -> None:
    app = SecurityHeaders(_page_app(True), csp_nonce=("script-src", "style-src"))
    first, second = call(app, make_environ()), call(app, make_environ())
    assert str(first.environ[CSP_NONCE]) != str(second.environ[CSP_NONCE])
    csp = second.header("Content-Security-Policy") or ""
    assert csp.count(f"'nonce-{second.environ[CSP_NONCE]}'") == 2


SELF_UIR = "default-src 'self'; upgrade-insecure-requests; frame-ancestors 'none'"


@pytest.mark.parametrize(
    "options, enforced, report_only",
    [
        pytest.param(
            {"csp_report_only": True},
            None,
            "default-src 'self'; frame-ancestors 'none'",
            id="report-only swap drops upgrade-insecure-requests",
        ),
        pytest.param(
            {"csp_report_only": "default-src 'none'; report-uri /r"},
            SELF_UIR,
            "default-src 'none'; report-uri /r",
            id="both at once",
        ),
        pytest.param({}, SELF_UIR, None, id="enforced only"),
    ],
)
def test_report_only_mode(
    options: dict[str, Any], enforced: str | None, report_only: str | None
) -> None:
    app = SecurityHeaders(hello_app, csp="default-src 'self'; upgrade-insecure-requests", **options)
    result = call(app, make_environ(scheme="https"))
    assert result.all("Content-Security-Policy") == ([enforced] if enforced else [])
    assert result.all("Content-Security-Policy-Report-Only") == (
        [report_only] if report_only else []
    )


def test_report_only_without_a_policy_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="csp_report_only"):
        SecurityHeaders(hello_app, csp=False, csp_report_only=True)


@pytest.mark.parametrize(
    "scheme, host, upgrade",
    [
        pytest.param("https", "example.com", True, id="https name"),
        pytest.param("https", "203.0.113.5", True, id="https public IP"),
        pytest.param("http", "example.com", False, id="plain http"),
        pytest.param("https", "localhost:8443", False, id="https localhost"),
        pytest.param("https", "[::1]:8443", False, id="https ::1"),
    ],
)
def test_upgrade_insecure_requests_only_on_secure_non_loopback(
    scheme: str, host: str, upgrade: bool
) -> None:
    result = call(SecurityHeaders(hello_app), make_environ(scheme=scheme, host=host))
    csp = result.header("Content-Security-Policy") or ""
    assert csp.startswith("default-src 'self'")
    assert ("upgrade-insecure-requests" in csp) is upgrade


@pytest.mark.parametrize(
    "options, frame_options, ancestors",
    [
        pytest.param({}, "DENY", "'none'", id="balanced default"),
        pytest.param({"frame_ancestors": "self"}, "SAMEORIGIN", "'self'", id="option self"),
        pytest.param({"frame_ancestors": "none"}, "DENY", "'none'", id="option none"),
        pytest.param(
            {"csp": "default-src 'self'; frame-ancestors 'none'"},
            "DENY",
            "'none'",
            id="from the csp",
        ),
        pytest.param(
            {"csp": "default-src 'self'; frame-ancestors https://a.example"},
            None,
            "https://a.example",
            id="not expressible as XFO",
        ),
        pytest.param({"csp": False, "frame_ancestors": "none"}, "DENY", None, id="no csp"),
    ],
)
def test_x_frame_options_follows_frame_ancestors(
    options: dict[str, Any], frame_options: str | None, ancestors: str | None
) -> None:
    result = call(SecurityHeaders(hello_app, **options), make_environ())
    assert result.header("X-Frame-Options") == frame_options
    csp = result.header("Content-Security-Policy")
    if ancestors is None:
        assert csp is None
    else:
        assert f"frame-ancestors {ancestors}" in (csp or "")


def test_frame_ancestors_conflicting_with_the_csp_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="frame_ancestors"):
        SecurityHeaders(csp="default-src 'self'; frame-ancestors 'none'", frame_ancestors="self")


def test_invalid_csp_string_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="CSP_POLICY"):
        SecurityHeaders(csp="default-src self")
