from __future__ import annotations

import ipaddress

import pytest

from voyagr_wsgi import ConfigurationError, Secret, Settings


def test_defaults_trust_nothing_and_protect() -> None:
    s = Settings.from_env({})
    assert s.trusted_proxies == ()
    assert s.allowed_hosts == ()
    assert s.enforce_https is False
    assert s.csrf_enabled is True
    assert s.admin_token is None
    assert s.x_xss_protection is None  # the preset's ("0")


def test_reads_the_seed_variables() -> None:
    s = Settings.from_env(
        {
            "ENFORCE_HTTPS": "true",
            "ALLOWED_HOSTS": "example.com, .example.org",
            "TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.7,::1",
            "VOYAGR_ADMIN_TOKEN": "s3cret-token-0123456789",
        }
    )
    assert s.enforce_https is True
    assert s.allowed_hosts == ("example.com", ".example.org")
    assert s.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.7/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert s.admin_token == Secret("s3cret-token-0123456789")
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        pytest.param({"ENFORCE_HTTPS": "maybe"}, ("ENFORCE_HTTPS", "true/false"), id="bad bool"),
        pytest.param(
            {"TRUSTED_PROXIES": "10.0.0.0/33"}, ("TRUSTED_PROXIES", "CIDR"), id="bad cidr"
        ),
        pytest.param({"TRUSTED_PROXIES": "proxy.local"}, ("TRUSTED_PROXIES",), id="name not ip"),
        pytest.param({"ALLOWED_HOSTS": "http://x.com/"}, ("ALLOWED_HOSTS",), id="url as host"),
        pytest.param({"HSTS_MAX_AGE": "-5"}, ("HSTS_MAX_AGE", ">= 0"), id="negative max-age"),
        pytest.param({"HSTS_MAX_AGE": "1y"}, ("HSTS_MAX_AGE", "integer"), id="max-age not int"),
        pytest.param({"SECURITY_PRESET": "paranoid"}, ("SECURITY_PRESET", "strict"), id="preset"),
        pytest.param({"X_XSS_PROTECTION": "1"}, ("X_XSS_PROTECTION", "mode=block"), id="xss"),
    ],
)
def test_bad_value_names_the_variable_and_what_it_accepts(
    env: dict[str, str], names: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    assert isinstance(info.value, ValueError)
    for name in names:
        assert name in str(info.value)


def test_replace_returns_a_changed_copy() -> None:
    s = Settings()
    t = s.replace(enforce_https=True)
    assert (s.enforce_https, t.enforce_https) == (False, True)
