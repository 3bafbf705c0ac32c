"""``voyagr-wsgi check``: deployment warnings, in the spirit of Django's ``check --deploy``.

Reads the settings (``Settings.from_env``, with ``--env-file`` over the environment) and
prints one line per finding (``--json``: one JSON document): ``ERROR`` for a setting that
cannot work, ``WARNING`` for a risky one, and ``voyagr.W009`` for a variable that looks like
voyagr's but is not one (a misspelling, with the closest name). Exits 1 when there is an
error (including a value ``Settings.from_env`` rejects), else 0.

Each area (:data:`voyagr_wsgi.areas.AREAS`) declares its findings with its
``deploy_checks(settings, environ=None)`` (``voyagr_wsgi.request_path``,
``voyagr_wsgi.ratelimit.area``, ...); ``environ`` holds the variables checked (the
environment plus ``--env-file``), for settings that are not voyagr's own (gunicorn's
``WEB_CONCURRENCY``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from . import _cli
from ._build import Finding
from ._cli import settings_from
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["Finding", "findings", "main", "settings_from"]


def findings(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    """Every finding for ``settings``: each area's, the request path's first, then the
    variables in ``environ`` that look like voyagr's but are not (a misspelled name is
    otherwise silently ignored)."""
    from .areas import AREAS

    result: list[Finding] = []
    for area in AREAS:
        result.extend(area.deploy_checks(settings, environ=environ))
    for name, closest in _cli.unknown_variables(os.environ if environ is None else environ):
        hint = f"; did you mean {closest}?" if closest else ""
        result.append(
            Finding("WARNING", "voyagr.W009", f"{name} is not a voyagr variable (ignored){hint}")
        )
    return result


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = _cli.parser("voyagr-wsgi check", __doc__)
    _cli.add_env_file(parser)
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args(argv)
    try:
        settings, env = _cli.settings_from(args.env_file, environ)
    except ConfigurationError as exc:
        if args.json:
            print(json.dumps({"errors": 1, "findings": [_as_dict(_bad_value(exc))]}))
        else:
            print(f"ERROR voyagr.E000: {exc}", file=sys.stderr)
        return 1
    found = findings(settings, env)
    errors = sum(f.level == "ERROR" for f in found)
    if args.json:
        print(json.dumps({"errors": errors, "findings": [_as_dict(f) for f in found]}, indent=2))
    else:
        for finding in found:
            print(finding)
        print(f"System check identified {len(found)} issue(s) ({errors} error(s)).")
    return 1 if errors else 0


def _bad_value(exc: ConfigurationError) -> Finding:
    return Finding("ERROR", "voyagr.E000", str(exc))


def _as_dict(finding: Finding) -> dict[str, str]:
    return {"level": finding.level, "code": finding.code, "message": finding.message}
