"""HTTPSRedirect: send plain-HTTP requests to the same URL over HTTPS.

Use it when the site must only be reached over HTTPS (``ENFORCE_HTTPS=true``) and nothing in
front of the app (load balancer, nginx) redirects already::

    from voyagr_wsgi.layers import ProxyTrust, HostCheck, HTTPSRedirect
    application = compose(app, ProxyTrust(trusted=["10.0.0.0/8"]),
                          HostCheck(allowed_hosts=["example.com"]),
                          HTTPSRedirect(exempt=["/.well-known/acme-challenge/*"]))

Behind a TLS-terminating proxy, declare the proxy (``TRUSTED_PROXIES``) so the scheme it
forwards is believed; otherwise every request looks like HTTP and redirects loop
(Gluejar/regluit#1264). The scheme is read through :func:`voyagr_wsgi.request.scheme`.

What it answers (RFC 9110 §15.4):

- ``301 Moved Permanently`` for GET and HEAD, ``308 Permanent Redirect`` for every other
  method, so a POST stays a POST with its body (rails/rails#23941, flask-sslify#52).
  Browsers cache both: check the target with a staging host first. ``unsafe="reject"``
  (``HTTPS_REDIRECT_UNSAFE``) answers those other methods ``403`` instead (an RFC 9457
  problem of type ``https-required``, :mod:`voyagr_wsgi.problem`): their body already
  crossed the network in clear, and a 308 would have the client send it a second time, so a
  client (an API consumer, a form) configured with ``http://`` fails loudly at once;
- ``Location: https://<host>[:https_port]<path>[?<query>]``. The host is the request's own
  (read through :func:`voyagr_wsgi.request.host`, which :class:`HostCheck` validated in the
  default order) without its port, or ``host=`` (``HTTPS_REDIRECT_HOST``, Django's
  ``SECURE_SSL_HOST``) to send every redirect to one canonical name; ``https_port`` adds a
  port (443 is never written). The path
  is rebuilt as PEP 3333 "URL Reconstruction" says: ``SCRIPT_NAME + PATH_INFO`` encoded back
  to bytes (latin-1) and percent-quoted, so CR, LF, spaces, ``\\``, ``#`` and non-ASCII
  bytes are escaped and a path can never end the header, add a header or name another host
  (``//evil.com`` stays a path below the host). The query string is kept, with anything
  outside RFC 3986's query characters percent-escaped. The layer also refuses (400, problem
type ``malformed-host``) a host
  that fails the Host syntax check, so it is safe without HostCheck in front, although only
  HostCheck stops a well-formed forged host.

Not redirected: HTTPS requests; loopback hosts (``localhost``, ``*.localhost``, 127.0.0.0/8,
``[::1]``, ``[::ffff:127.0.0.1]``) so local development works (apache/superset#7535); exempt
paths. ``exempt``
(``HTTPS_REDIRECT_EXEMPT``) follows the one path grammar (:mod:`voyagr_wsgi.layers._paths`):
exact paths (``/healthz``, which also covers ``/healthz/``) and prefixes ending in ``/*``
(``/static/*`` covers ``/static/`` and below but not ``/static``, golang/go#75054), matched
against the normalised ``SCRIPT_NAME + PATH_INFO`` (:func:`voyagr_wsgi.request.request_path`:
``//healthz`` is ``/healthz``). ``/static/`` is an error: it used to mean that one path
only; write ``/static/*`` for everything under it. The redirect itself keeps the path as
sent.

A refusal (never a redirect) counts into ``counters=`` (:class:`voyagr_wsgi.counters.Counters`)
as ``https_redirect``/``malformed-host`` or ``https-required``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import quote

from .._layer import Layer
from .._wsgi import Environ, StartResponse, WSGIApplication
from ..counters import Counters
from ..errors import ConfigurationError
from ..problem import prepare, send
from ..request import SCHEME, hostname, is_loopback_host, request_path
from ..request import host as request_host
from ..request import scheme as request_scheme
from ._paths import PathPatterns
from .host_check import split_host

__all__ = ["HTTPSRedirect", "https_url"]

#: RFC 3986 pchar minus the unreserved set quote() always keeps; "%" is NOT safe in a path:
#: PATH_INFO is decoded, so a literal "%" must go back out as %25.
_PATH_SAFE = "/:@!$&'()*+,;="
#: query characters kept as sent (QUERY_STRING is still percent-encoded, so "%" stays).
_QUERY_SAFE = "/?:@!$&'()*+,;=%"

_BAD_HOST = prepare("malformed-host", "the Host header names no host to redirect to")
_INSECURE = prepare("https-required", "this request must be sent over HTTPS")


def _to_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1")  # PEP 3333: native strings carry bytes as latin-1
    except UnicodeEncodeError:  # a server that decoded as UTF-8 anyway
        return text.encode("utf-8", "surrogatepass")


def https_url(environ: Environ, host: str, port_suffix: str = "") -> str:
    """``https://host<port_suffix><quoted path>[?query]`` per PEP 3333 URL reconstruction."""
    path = quote(
        _to_bytes(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")), safe=_PATH_SAFE
    )
    if not path.startswith("/"):
        path = "/" + path
    url = f"https://{host}{port_suffix}{path}"
    query = environ.get("QUERY_STRING")
    if query:
        url += "?" + quote(_to_bytes(query), safe=_QUERY_SAFE)
    return url


class HTTPSRedirect(Layer):
    """301 (GET/HEAD) or 308 (others) from ``http://`` to the same ``https://`` URL."""

    def __init__(
        self,
        app: WSGIApplication | None = None,
        /,
        *,
        exempt: Iterable[str] = (),
        https_port: int | None = None,
        host: str | None = None,
        unsafe: Literal["redirect", "reject"] = "redirect",
        counters: Counters | None = None,
    ) -> None:
        paths = tuple(exempt)
        options = {"exempt": paths, "https_port": https_port, "host": host, "unsafe": unsafe}
        self._init(app, options)
        if unsafe not in ("redirect", "reject"):
            raise ConfigurationError(
                f"HTTPSRedirect unsafe (HTTPS_REDIRECT_UNSAFE)={unsafe!r}: 'redirect' or 'reject'"
            )
        self._reject = unsafe == "reject"
        #: refusals counted as ``rejection("https_redirect", "malformed-host"|"https-required")``
        self.counters = counters if counters is not None else Counters()
        if host is not None and (
            not isinstance(host, str)
            or ":" in host
            or split_host(host) is None
            or hostname(host.lower()).rstrip(".") != host.lower()
        ):
            raise ConfigurationError(
                f"HTTPSRedirect host (HTTPS_REDIRECT_HOST)={host!r}: a host name such as "
                "www.example.com (no scheme, port or path; the port is https_port)"
            )
        self.host = host.lower() if host else None
        self._exempt = PathPatterns(paths, setting="HTTPS_REDIRECT_EXEMPT (exempt)")
        if https_port is not None and (
            isinstance(https_port, bool)
            or not isinstance(https_port, int)
            or not 0 < https_port < 65536
        ):
            raise ConfigurationError(f"HTTPSRedirect https_port={https_port!r}: use 1-65535")
        self.exempt = paths
        self.https_port = https_port
        self._port_suffix = "" if https_port in (None, 443) else f":{https_port}"

    def is_exempt(self, path: str) -> bool:
        return self._exempt(path)

    def explain(self, environ: Environ) -> dict[str, Any]:
        """The redirect (or refusal) the request path sends, or the scheme and host it let
        through: ``__call__`` run detached."""
        seen, status, headers = self._run_detached(dict(environ), counters=Counters())
        if seen is None:
            location = next((v for k, v in headers if k == "Location"), None)
            return {"outcome": "answers", "status": status, "location": location}
        return {"outcome": "passes", "scheme": request_scheme(seen), "host": request_host(seen)}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        scheme = environ.get(SCHEME)  # request.scheme(), its ProxyTrust case inline
        if (scheme if scheme is not None else request_scheme(environ)) == "https":
            nxt = self._next
            return nxt(environ, start_response)
        host = request_host(environ)
        if is_loopback_host(host):
            nxt = self._next
            return nxt(environ, start_response)
        if self._exempt and self._exempt(request_path(environ)):
            nxt = self._next
            return nxt(environ, start_response)
        name = hostname(host).rstrip(".")
        if not name or split_host(host) is None:  # "..": no host left to redirect to
            self.counters.rejection("https_redirect", "malformed-host")
            return send(start_response, _BAD_HOST)
        method = environ.get("REQUEST_METHOD", "GET")
        safe = method in ("GET", "HEAD")
        if self._reject and not safe:
            self.counters.rejection("https_redirect", "https-required")
            return send(start_response, _INSECURE)
        location = https_url(environ, self.host or name, self._port_suffix)
        status = "301 Moved Permanently" if safe else "308 Permanent Redirect"
        start_response(
            status,
            [("Location", location), ("Content-Type", "text/plain"), ("Content-Length", "0")],
        )
        return []
