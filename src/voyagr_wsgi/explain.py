"""``explain``: what each layer of a stack would do with one request, and why.

The question a proxy or header problem raises ("why is the client IP 10.0.0.2?", "why 403?",
"which CSP does /docs get?") answered without sending traffic::

    from voyagr_wsgi.explain import explain
    print(explain(application, environ))      # a Stack, or an app holding one

    $ voyagr-wsgi explain /login --method POST --remote 10.0.0.2 \\
          -H "X-Forwarded-For: 203.0.113.7" -H "Origin: https://evil.example"

Each layer's :meth:`~voyagr_wsgi._layer.Layer.explain` runs that layer's own request path
on a private copy of the environ, around a recorder instead of the next layer, with its side
effects replaced: what it reports is the decision the request would meet, not a second
implementation of it. Nothing is recorded, logged or spent (the rate limit peeks at the store
with cost 0), no admin or health handler runs and the app is never called. The
walk stops at the first layer that would answer the request itself. The command builds the
stack from the same settings as the app (``Settings.from_env``, ``--env-file``) around an
app that is never called, so it shows what the layers decide, not what the app answers.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from wsgiref.util import setup_testing_defaults

from ._wsgi import Environ
from .errors import ConfigurationError
from .request import environ_key

__all__ = ["Explanation", "Step", "explain", "main"]


@dataclass(frozen=True)
class Step:
    """One layer's answer: ``outcome`` is passes, answers or unknown (not a voyagr layer)."""

    layer: str
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Explanation:
    """The steps in order (outermost layer first), and the environ the app would see."""

    steps: tuple[Step, ...]
    environ: Environ

    @property
    def answered_by(self) -> Step | None:
        """The layer that would answer the request itself, or None: the app answers."""
        last = self.steps[-1] if self.steps else None
        return last if last is not None and last.outcome == "answers" else None

    def __str__(self) -> str:
        lines = []
        for number, step in enumerate(self.steps, 1):
            simple = {k: v for k, v in step.detail.items() if not _is_headers(v)}
            text = " ".join(f"{k}={v}" for k, v in simple.items())
            lines.append(f"{number:>2} {step.layer:<22} {step.outcome:<8} {text}".rstrip())
            for key, value in step.detail.items():
                if _is_headers(value):
                    lines.append(f"{'':>3} {key}:")
                    lines.extend(f"{'':>6}{name}: {val}" for name, val in value)
        answered = self.answered_by
        if answered is None:
            lines.append("-> passed to the app")
        else:
            status = answered.detail.get("status") or answered.detail.get("endpoint", "")
            lines.append(f"-> answered by {answered.layer}: {status}".rstrip(": "))
        return "\n".join(lines)


def _is_headers(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, tuple) and len(v) == 2 for v in value)
    )


def explain(app: Any, environ: Environ) -> Explanation:
    """What each layer of ``app``'s stack would do with ``environ`` (which is not changed)."""
    from .gunicorn import find_stack

    stack = find_stack(app)
    if stack is None:
        raise ConfigurationError(f"explain: {app!r} is not a voyagr_wsgi Stack nor holds one")
    env = dict(environ)
    steps: list[Step] = []
    for layer in stack.layers:
        name = getattr(layer, "__name__", None) or type(layer).__name__  # a function's own name
        explainer = getattr(layer, "explain", None)
        info = explainer(env) if explainer is not None else None
        if info is None:
            steps.append(Step(name, "unknown", {"reason": "cannot tell without running it"}))
            continue
        outcome = info.pop("outcome")
        steps.append(Step(name, outcome, info))
        if outcome == "answers":
            break
    return Explanation(tuple(steps), env)


def build_environ(
    path: str = "/",
    *,
    method: str = "GET",
    host: str = "localhost",
    scheme: str = "http",
    remote: str = "127.0.0.1",
    headers: Sequence[str] = (),
) -> Environ:
    """A PEP 3333 environ for ``explain`` from command-line style arguments."""
    path, _, query = path.partition("?")
    environ: Environ = {
        "REQUEST_METHOD": method.upper(),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_HOST": host,
        "REMOTE_ADDR": remote,
        "wsgi.url_scheme": scheme,
        "SERVER_PORT": "443" if scheme == "https" else "80",
    }
    for line in headers:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ConfigurationError(f"explain: header {line!r} is not 'Name: value'")
        environ[environ_key(name)] = value.strip()
    setup_testing_defaults(environ)
    return environ


def _never_called(environ: Environ, start_response: Any) -> list[bytes]:
    raise AssertionError("explain never calls the app")  # pragma: no cover


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    from . import _cli
    from .compose import compose

    parser = _cli.parser("voyagr-wsgi explain", __doc__)
    parser.add_argument("path", nargs="?", default="/", help="path and query (default /)")
    parser.add_argument("--method", "-X", default="GET")
    parser.add_argument(
        "--host", help="the Host header (default: the first name in ALLOWED_HOSTS, or localhost)"
    )
    parser.add_argument("--scheme", default="http", choices=("http", "https"))
    parser.add_argument("--remote", default="127.0.0.1", help="the peer address (REMOTE_ADDR)")
    parser.add_argument(
        "--header", "-H", action="append", default=[], help="'Name: value', repeatable"
    )
    _cli.add_env_file(parser)
    args = parser.parse_args(argv)
    try:
        settings, _ = _cli.settings_from(args.env_file, environ)
        stack = compose(_never_called, settings)
        names = [h.lstrip(".") for h in settings.allowed_hosts if h != "*"]
        host = args.host or (names[0] if names else "localhost")
        request = build_environ(
            args.path,
            method=args.method,
            host=host,
            scheme=args.scheme,
            remote=args.remote,
            headers=args.header,
        )
    except (ConfigurationError, OSError) as exc:
        print(f"voyagr-wsgi explain: {exc}", file=sys.stderr)
        return 1
    print(f"{request['REQUEST_METHOD']} {args.path} Host: {host} from {args.remote}")
    print(explain(stack, request))
    return 0
