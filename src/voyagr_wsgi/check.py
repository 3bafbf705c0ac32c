"""``voyagr-wsgi check``: deployment warnings, in the spirit of Django's ``check --deploy``.

Reads the settings (``Settings.from_env``, optionally after loading an env file) and prints
one line per finding: ``ERROR`` for a setting that cannot work, ``WARNING`` for a risky one.
Exits 1 when there is an error (including a value ``Settings.from_env`` rejects), else 0.

Each area (:data:`voyagr_wsgi.compose.AREAS`) declares its findings with its
``deploy_checks(settings, environ=None)`` (``voyagr_wsgi.request_path``,
``voyagr_wsgi.ratelimit.area``, ...); ``environ``
holds the variables checked (the environment plus ``--env-file``), for settings that are not
voyagr's own (gunicorn's ``WEB_CONCURRENCY``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigurationError
from .settings import Settings

__all__ = ["Finding", "findings", "main"]

@dataclass(frozen=True, slots=True)
class Finding:
    level: Literal["ERROR", "WARNING"]
    code: str  # e.g. "voyagr.W001"
    message: str

    def __str__(self) -> str:
        return f"{self.level} {self.code}: {self.message}"


def findings(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    """Every finding for ``settings``: each area's, the request path's first."""
    from .areas import AREAS

    result: list[Finding] = []
    for area in AREAS:
        result.extend(area.deploy_checks(settings, environ=environ))
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
