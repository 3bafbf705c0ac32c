"""voyagr's deploy checks in `manage.py check --deploy` (run as a subprocess on the test
project), and the missing-extra error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(TESTS), "src")
MANAGE = os.path.join(TESTS, "django_project", "manage.py")


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HSTS_", "DJANGO_"))}
    clean["PYTHONPATH"] = SRC
    return subprocess.run(
        [sys.executable, MANAGE, *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_deploy_shows_voyagr_warnings_with_their_ids() -> None:
    done = manage("check", "--deploy")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "?: (voyagr.W003) ENFORCE_HTTPS is off" in out
    assert "?: (voyagr.W006) VOYAGR_ADMIN_TOKEN is not set" in out
    assert "(security.W016)" in out  # Django's own deploy checks still run beside them


def test_a_voyagr_error_fails_check_deploy() -> None:
    done = manage("check", "--deploy", "--tag", "voyagr", HSTS_PRELOAD="true", HSTS_MAX_AGE="10")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "ERRORS:" in out
    assert "?: (voyagr.E001) HSTS_PRELOAD needs HSTS_MAX_AGE >= 31536000" in out


def test_a_setting_voyagr_rejects_is_E000() -> None:
    done = manage("check", "--deploy", "--tag", "voyagr", HSTS_MAX_AGE="a year")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "?: (voyagr.E000) HSTS_MAX_AGE='a year'" in out


def test_plain_check_stays_quiet_about_deployment() -> None:
    done = manage("check")
    assert done.returncode == 0, done.stderr
    assert "voyagr." not in done.stdout + done.stderr


@pytest.mark.parametrize("module", ["voyagr_wsgi.django", "voyagr_wsgi.django.apps"])
def test_without_django_importing_the_integration_names_the_extra(module: str) -> None:
    code = (
        "import sys; sys.modules['django'] = None\n"
        "from voyagr_wsgi import ConfigurationError\n"
        "try:\n"
        f"    import {module}\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "voyagr_wsgi.django needs: pip install 'voyagr-wsgi[django]'"
