"""``voyagr-wsgi check``: deployment warnings, in the spirit of Django's ``check --deploy``.

Reads the settings (``Settings.from_env``, optionally after loading an env file) and prints
one line per finding: ``ERROR`` for a setting that cannot work, ``WARNING`` for a risky one.
Exits 1 when there is an error (including a value ``Settings.from_env`` rejects), else 0.

Each service area may add its own findings with a ``deploy_checks(settings, environ=None)``
function in its package (``voyagr_wsgi.ratelimit``, ``voyagr_wsgi.metrics``, ...); ``environ``
holds the variables checked (the environment plus ``--env-file``), for settings that are not
voyagr's own (gunicorn's ``WEB_CONCURRENCY``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigurationError
from .settings import Settings

__all__ = ["Finding", "findings", "main"]

AREA_PACKAGES = (
    "voyagr_wsgi.ratelimit",
    "voyagr_wsgi.metrics",
    "voyagr_wsgi.backups",
    "voyagr_wsgi.alerts",
)


@dataclass(frozen=True, slots=True)
class Finding:
    level: Literal["ERROR", "WARNING"]
    code: str  # e.g. "voyagr.W001"
    message: str

    def __str__(self) -> str:
        return f"{self.level} {self.code}: {self.message}"


def _core(settings: Settings) -> Iterable[Finding]:
    if not settings.allowed_hosts:
        yield Finding(
            "WARNING",
            "voyagr.W001",
            "ALLOWED_HOSTS is empty: any Host header is accepted (syntax-checked only); "
            "set it to your domain(s)",
        )
    elif "*" in settings.allowed_hosts:
        yield Finding("WARNING", "voyagr.W002", "ALLOWED_HOSTS contains '*': host check is off")
    if not settings.enforce_https:
        yield Finding(
            "WARNING",
            "voyagr.W003",
            "ENFORCE_HTTPS is off: plain-HTTP requests are served (set it once TLS works)",
        )
    elif not settings.trusted_proxies:
        yield Finding(
            "WARNING",
            "voyagr.W004",
            "ENFORCE_HTTPS is on but TRUSTED_PROXIES is empty: behind a TLS-terminating "
            "proxy (a PaaS router) every request looks like HTTP and redirects forever; "
            "set TRUSTED_PROXIES to the proxy's addresses unless the app serves TLS itself",
        )
    if settings.hsts and not settings.enforce_https and not settings.trusted_proxies:
        yield Finding(
            "WARNING",
            "voyagr.W005",
            "HSTS is on but there is no HTTPS source (ENFORCE_HTTPS off, no TRUSTED_PROXIES): "
            "it is only ever sent on HTTPS requests, so it may never be sent",
        )
    if settings.hsts_preload and (
        (settings.hsts_max_age is not None and settings.hsts_max_age < 31_536_000)
        or not settings.hsts_include_subdomains
    ):
        yield Finding(
            "ERROR",
            "voyagr.E001",
            "HSTS_PRELOAD needs HSTS_MAX_AGE >= 31536000 and HSTS_INCLUDE_SUBDOMAINS=true",
        )
    if settings.admin_token is None:
        yield Finding(
            "WARNING",
            "voyagr.W006",
            "VOYAGR_ADMIN_TOKEN is not set: admin endpoints answer loopback clients only",
        )
    elif len(settings.admin_token.reveal()) < 24:
        yield Finding("WARNING", "voyagr.W007", "VOYAGR_ADMIN_TOKEN is shorter than 24 characters")
    if not settings.csrf_enabled:
        yield Finding("WARNING", "voyagr.W008", "CSRF_ENABLED is off: no cross-origin protection")


def findings(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    """Every finding for ``settings``: the request path's and each area's."""
    result = list(_core(settings))
    for package in AREA_PACKAGES:
        checks = getattr(importlib.import_module(package), "deploy_checks", None)
        if checks is not None:
            result.extend(checks(settings, environ=environ))
    return result


def _read_env_file(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if not sep:
                raise ConfigurationError(f"{path}:{number}: expected NAME=value")
            values[name.strip()] = value.strip().strip('"').strip("'")
    return values


def settings_from(
    env_file: str | None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, str]]:
    """The settings the app would read, from ``environ`` (default ``os.environ``) with the
    variables of ``env_file`` over it; also the variables read. Raises ConfigurationError
    or OSError."""
    env = dict(os.environ if environ is None else environ)
    if env_file:
        env.update(_read_env_file(env_file))
    return Settings.from_env(env), env


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voyagr-wsgi check", description=__doc__.split("\n")[0])
    parser.add_argument("--env-file", help="read variables from this file (over the environment)")
    args = parser.parse_args(argv)
    try:
        settings, env = settings_from(args.env_file, environ)
    except (ConfigurationError, OSError) as exc:
        print(f"ERROR voyagr.E000: {exc}", file=sys.stderr)
        return 1
    found = findings(settings, env)
    for finding in found:
        print(finding)
    errors = sum(f.level == "ERROR" for f in found)
    print(f"System check identified {len(found)} issue(s) ({errors} error(s)).")
    return 1 if errors else 0
