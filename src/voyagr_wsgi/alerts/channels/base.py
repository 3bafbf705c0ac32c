"""The channel contract and the one HTTP helper every webhook channel uses.

A channel has a ``name``, a ``min_interval_s`` (pacing: Slack wants about one message per
second per webhook), ``accepts(notification)`` (chat and mail skip Alertmanager's ``refresh``
notifications) and ``send(notification, timeout)``, which returns on success and raises
:class:`DeliveryFailed` otherwise, saying whether a retry may help and after how long the
receiver asked us to wait (``Retry-After``, Discord's ``retry_after``).

:func:`post_json` uses only :mod:`urllib.request`, no redirects (a webhook that redirects a
POST is misconfigured) and error messages that never contain the URL: a Slack or Discord
webhook URL is a credential. Credentials in the URL (``https://user:pass@host/...``) are sent
as HTTP basic auth, never as part of the address; ``headers`` add others (``Authorization``,
``X-Scope-OrgID`` for a multi-tenant Alertmanager such as Mimir). ``context`` verifies HTTPS
against a CA bundle of your own (``ALERT_CA_FILE``); a certificate that does not verify is a
non-retryable failure whose message says how to fix it. Its ``timeout`` bounds the *whole*
exchange, not each socket read: a watchdog shuts the connection's socket down when the time is
spent, so a receiver that drips one byte every few seconds (each read well inside a per-read
timeout) still ends in a retryable ``timeout`` failure on time.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit, urlunsplit

from ...errors import ChannelError
from ...secret import Secret
from ..model import Notification

__all__ = [
    "TLS_HINT",
    "Channel",
    "DeliveryFailed",
    "HttpResult",
    "parse_retry_after",
    "post_json",
    "split_credentials",
]

#: what a certificate that does not verify tells the operator to do
TLS_HINT = (
    "the server's TLS certificate does not verify: set ALERT_CA_FILE to the CA bundle that "
    "signed it (a private CA), or fix the server's certificate chain"
)


class DeliveryFailed(ChannelError):
    """One delivery attempt failed; ``retryable`` and ``retry_after_s`` guide the dispatcher."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        retry_after_s: float | None = None,
        dead: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable and not dead
        self.retry_after_s = retry_after_s
        #: the endpoint is gone or refuses us for good (HTTP 401, 403, 404, 410): sending the
        #: next alerts there too would only count towards Discord's invalid-request ban
        self.dead = dead


@runtime_checkable
class Channel(Protocol):
    name: str
    min_interval_s: float  # pacing between two sends on this channel

    def accepts(self, notification: Notification) -> bool: ...

    def send(self, notification: Notification, timeout: float) -> None: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx surfaces as an HTTPError


class _Watchdog:
    """Shuts down the sockets of one exchange when its total time is spent."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.name = "voyagr-alert-deadline"

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a recv() blocked in another thread
        except OSError:
            pass  # already closed: nothing left to wake

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _opener(
    watchdog: _Watchdog, context: ssl.SSLContext | None = None
) -> urllib.request.OpenerDirector:
    """An opener whose connections register their socket with ``watchdog``."""

    class HTTPConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    class HTTPSConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(HTTPConnection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(HTTPSConnection, req, context=getattr(self, "_context", None))

    return urllib.request.build_opener(_NoRedirect(), HTTPHandler(), HTTPSHandler(context=context))


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its ``user:password@`` part, and the basic-auth header it carried."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    user, password = unquote(parts.username), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, {"Authorization": f"Basic {token}"}


HttpResult = tuple[int, Mapping[str, str], bytes]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` value: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def post_json(
    url: Secret,
    payload: Any,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    context: ssl.SSLContext | None = None,
) -> HttpResult:
    """POST ``payload`` as JSON; 2xx returns, anything else raises :class:`DeliveryFailed`.

    ``timeout`` (seconds) bounds the whole exchange: connect, headers and body. 5xx, 429,
    408, network errors and a spent timeout are retryable; other 4xx are not.
    """
    data = body if body is not None else json.dumps(payload).encode()
    if not url.reveal().lower().startswith(("http://", "https://")):
        raise DeliveryFailed("not an http(s) URL", retryable=False)
    try:
        address, auth = split_credentials(url.reveal())
    except ValueError:  # a bad port: never echo the URL
        raise DeliveryFailed("not a valid URL", retryable=False) from None
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        address,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "voyagr-wsgi",
            **auth,
            **(headers or {}),
        },
    )
    started = time.monotonic()
    with _Watchdog(timeout) as watchdog:
        try:
            return _exchange(_opener(watchdog, context), request, timeout)
        except DeliveryFailed:
            if watchdog.expired or time.monotonic() - started >= timeout:
                raise DeliveryFailed(f"no complete answer within {timeout:g}s (timeout)") from None
            raise


def _exchange(opener: urllib.request.OpenerDirector, request: Any, timeout: float) -> HttpResult:
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        status = exc.code
        raw = exc.read() if exc.fp is not None else b""
        exc.close()
        retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        if status == 429 and raw:
            retry_after = _body_retry_after(raw, retry_after)
        retryable = status >= 500 or status in (408, 429)
        raise DeliveryFailed(
            f"HTTP {status}",
            retryable=retryable,
            retry_after_s=retry_after,
            dead=status in _DEAD,
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise DeliveryFailed(f"TLS error: {TLS_HINT}", retryable=False) from None
        kind = type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
        raise DeliveryFailed(f"network error ({kind})") from None


#: answers meaning the webhook was deleted, or its credentials revoked: a configuration error
_DEAD = frozenset({401, 403, 404, 410})


def _body_retry_after(raw: bytes, fallback: float | None) -> float | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return fallback
    value = doc.get("retry_after") if isinstance(doc, dict) else None
    if isinstance(value, int | float) and value >= 0:
        return float(value) if fallback is None else max(float(value), fallback)
    return fallback
