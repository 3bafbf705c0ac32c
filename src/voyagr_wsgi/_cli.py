"""What every ``voyagr-wsgi`` subcommand shares: ``--env-file``, plain help text, the
settings the app would read, and the variables voyagr knows.

``--env-file FILE`` is parsed with python-dotenv, the parser most PaaS tools and
``docker --env-file`` users write for: quotes (``CSP_POLICY="default-src 'self'"`` keeps its
inner quotes), ``# comments`` after values, ``export NAME=value``. The file's variables go
over the environment's.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "add_env_file",
    "known_variables",
    "parser",
    "plain",
    "read_env_file",
    "settings_from",
    "unknown_variables",
]

#: variables a deployment sets for the server, read by gunicorn, the PaaS or
#: ``voyagr_wsgi.gunicorn``, not by Settings
SERVER_VARIABLES = frozenset(
    {
        "PORT",
        "WEB_CONCURRENCY",
        "GUNICORN_CMD_ARGS",
        "FORWARDED_ALLOW_IPS",
        "LOG_LEVEL",
        "VOYAGR_SERVER_HEADER",
    }
)
#: first words of our variables that other software uses too: no "looks like ours" on them
_SHARED_WORDS = frozenset({"X", "AWS", "DATABASE", "LOG", "PORT", "WEB", "FORWARDED"})

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain(text: str) -> str:
    """Docstring text for a terminal: ``literal`` and :role:`~a.b` markup removed."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return text.replace("``", "")


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose description is the first paragraph of ``doc``, plain."""
    first = (doc or "").strip().split("\n\n")[0]
    return argparse.ArgumentParser(prog=prog, description=plain(" ".join(first.split())))


def add_env_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env-file",
        metavar="FILE",
        help="read variables from this dotenv file (over the environment)",
    )


def read_env_file(path: str) -> dict[str, str]:
    """The variables of a dotenv file; a line without ``=`` is an error naming it."""
    from dotenv import dotenv_values

    if not os.path.isfile(path):
        raise ConfigurationError(f"--env-file {path}: no such file")
    values = dotenv_values(path, interpolate=False)
    empty = sorted(name for name, value in values.items() if value is None)
    if empty:
        raise ConfigurationError(f"--env-file {path}: expected NAME=value for {', '.join(empty)}")
    return {name: value for name, value in values.items() if value is not None}


def settings_from(
    env_file: str | None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, str]]:
    """The settings the app would read, from ``environ`` (default ``os.environ``) with the
    variables of ``env_file`` over it; also the variables read. Raises ConfigurationError."""
    from .settings import Settings

    env = dict(os.environ if environ is None else environ)
    if env_file:
        env.update(read_env_file(env_file))
    return Settings.from_env(env), env


class _Recorder(Mapping[str, str]):
    """An empty mapping that remembers every name looked up in it."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.seen.add(name)
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.seen.add(name)
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def known_variables() -> frozenset[str]:
    """Every variable ``Settings.from_env`` reads (it reads all of them, set or not), plus
    the server's."""
    from .settings import Settings

    recorder = _Recorder()
    Settings.from_env(recorder)
    return frozenset(recorder.seen) | SERVER_VARIABLES


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """Variables in ``environ`` that look like voyagr's but are not: ``(name, closest known
    name or None)``. A name looks like ours when all but its last word begin one of our
    variables (``RATE_LIMIT_REQUEST``, ``SMTP_HOSTNAME``) or it is a typo away from one
    (``ALLOWD_HOSTS``); names whose first word other software shares (``AWS_``, ``X_``,
    ``DATABASE_``) are left alone unless they are a typo away."""
    known = known_variables()
    stems = {name.rsplit("_", 1)[0] for name in known if "_" in name}
    found: list[tuple[str, str | None]] = []
    for name in sorted(environ):
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
        ours = name.rsplit("_", 1)[0] in stems and name.split("_", 1)[0] not in _SHARED_WORDS
        if ours and not close:  # surely meant for us: a looser suggestion helps
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close or ours:
            found.append((name, close[0] if close else None))
    return found
