"""The one way the library answers by itself: RFC 9457 problem details, and plain JSON.

Every response a voyagr layer or admin route makes on its own (a refused Host, a blocked
cross-origin post, a 429, an admin 401, a bad admin body...) is an
``application/problem+json`` document (RFC 9457) with ``Cache-Control: no-store`` and a
``Content-Length``::

    {"type": "https://voyagr-wsgi.dev/problems/host-not-allowed",
     "title": "Host Not Allowed", "status": 400,
     "detail": "the Host header is malformed or not in ALLOWED_HOSTS"}

``type`` is the stable identifier a client keys on (RFC 9457 section 3.1.1); ``title`` is fixed
per type; ``detail`` explains this occurrence and never echoes request data back. Successful
admin answers are plain JSON made by :func:`json_response` (health documents keep
``application/health+json``).

Problem types. The ``type`` URI of each kind is ``BASE + kind`` with
``BASE = "https://voyagr-wsgi.dev/problems/"``, except the two rate-limit kinds, which use
the IANA problem types registered by draft-ietf-httpapi-ratelimit-headers
(``https://iana.org/assignments/http-problem-types#<kind>``). Kinds never change meaning;
new ones may be added.

- ``host-not-allowed``, 400: HostCheck, the Host is malformed or not in ``ALLOWED_HOSTS``;
- ``malformed-host``, 400: HTTPSRedirect, no host name left to redirect to;
- ``https-required``, 403: HTTPSRedirect with ``unsafe="reject"``, a body method over HTTP;
- ``cross-origin-blocked``, 403: CrossOriginProtection; member ``reason`` names the check;
- ``quota-exceeded``, 429 (IANA): RateLimit; member ``violated-policies``; the wait is in
  ``Retry-After`` and the ``RateLimit`` field;
- ``temporary-reduced-capacity``, 503 (IANA): RateLimit, store down under a ``closed`` policy;
- ``admin-token-required``, 401: Admin, no or wrong bearer token (``WWW-Authenticate``);
- ``admin-token-not-configured``, 403: Admin, a state change (POST, DELETE...) while no
  ``VOYAGR_ADMIN_TOKEN`` is set, whoever asks;
- ``not-found``, 404: Admin, no token configured and the client is not loopback;
- ``method-not-allowed``, 405: Admin and Probe, with ``Allow``;
- ``body-too-large``, 413: an admin request body over the cap (64 KiB);
- ``unsupported-media-type``, 415: an admin JSON route got a body that is not JSON;
- ``malformed-body``, 400: an admin body that is not JSON, or nests deeper than 32 levels;
- ``invalid-body``, 422: well-formed JSON with a field missing, of the wrong type or out
  of range;
- ``invalid-query``, 400: a query parameter of an admin endpoint that is not what it
  accepts (``metrics/history?since=`` not a number of seconds);
- ``invalid-backup-id``, 400: a restore id that does not match the id pattern;
- ``backup-not-found``, 404: no listed backup has this id;
- ``backup-busy``, 409: another backup or restore is running;
- ``backup-incompatible``, 409: restore, the schema or ``user_version`` differs;
- ``backup-verification-failed``, 422: restore, the backup fails verification;
- ``backup-failed``, 500: a backup or restore failed on this host (logged);
- ``storage-failed``, 502: the backup store (S3) failed (logged);
- ``invalid-job-id``, 400: a backup job status asked with something not a job id;
- ``job-not-found``, 404: no backup job has this id (or it was pruned).

Hot paths answer from bodies built once: a layer calls :func:`prepare` (or
:func:`prepare_json`) in ``__init__`` and :func:`send` per refused request (one list copy
and one ``start_response``). Admin handlers return :func:`response` or raise
:class:`ProblemError`, which the Admin layer turns into the response.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ._wsgi import Headers, StartResponse

__all__ = [
    "BASE",
    "CONTENT_TYPE",
    "KINDS",
    "Kind",
    "Prepared",
    "ProblemError",
    "Response",
    "body",
    "json_response",
    "prepare",
    "prepare_json",
    "response",
    "send",
]

BASE = "https://voyagr-wsgi.dev/problems/"
_IANA = "https://iana.org/assignments/http-problem-types#"
CONTENT_TYPE = "application/problem+json"

#: what an admin handler returns: ``(status line, headers, body iterable)``
Response = tuple[str, Headers, Iterable[bytes]]


class Kind(NamedTuple):
    """One problem type: its URI, title and HTTP status line."""

    type: str
    title: str
    status: str

    @property
    def code(self) -> int:
        return int(self.status[:3])


def _kind(slug: str, title: str, status: str, base: str = BASE) -> tuple[str, Kind]:
    return slug, Kind(base + slug, title, status)


KINDS: dict[str, Kind] = dict(
    [
        _kind("host-not-allowed", "Host Not Allowed", "400 Bad Request"),
        _kind("malformed-host", "Malformed Host", "400 Bad Request"),
        _kind("https-required", "HTTPS Required", "403 Forbidden"),
        _kind("cross-origin-blocked", "Cross-Origin Request Blocked", "403 Forbidden"),
        _kind("quota-exceeded", "Quota Exceeded", "429 Too Many Requests", _IANA),
        _kind(
            "temporary-reduced-capacity",
            "Temporary Reduced Capacity",
            "503 Service Unavailable",
            _IANA,
        ),
        _kind("admin-token-required", "Admin Token Required", "401 Unauthorized"),
        _kind("admin-token-not-configured", "Admin Token Not Configured", "403 Forbidden"),
        _kind("not-found", "Not Found", "404 Not Found"),
        _kind("method-not-allowed", "Method Not Allowed", "405 Method Not Allowed"),
        _kind("body-too-large", "Body Too Large", "413 Content Too Large"),
        _kind("unsupported-media-type", "Unsupported Media Type", "415 Unsupported Media Type"),
        _kind("malformed-body", "Malformed Body", "400 Bad Request"),
        _kind("invalid-body", "Invalid Body", "422 Unprocessable Content"),
        _kind("invalid-query", "Invalid Query", "400 Bad Request"),
        _kind("invalid-backup-id", "Invalid Backup Id", "400 Bad Request"),
        _kind("backup-not-found", "Backup Not Found", "404 Not Found"),
        _kind("backup-busy", "Backup Busy", "409 Conflict"),
        _kind("backup-incompatible", "Backup Incompatible", "409 Conflict"),
        _kind(
            "backup-verification-failed", "Backup Verification Failed", "422 Unprocessable Content"
        ),
        _kind("backup-failed", "Backup Failed", "500 Internal Server Error"),
        _kind("storage-failed", "Storage Failed", "502 Bad Gateway"),
        _kind("invalid-job-id", "Invalid Job Id", "400 Bad Request"),
        _kind("job-not-found", "Job Not Found", "404 Not Found"),
    ]
)


def body(
    kind: str, detail: str | None = None, extensions: Mapping[str, Any] | None = None
) -> bytes:
    """The problem document of ``kind`` as compact JSON bytes."""
    k = KINDS[kind]
    doc: dict[str, Any] = {"type": k.type, "title": k.title, "status": k.code}
    if detail:
        doc["detail"] = detail
    if extensions:
        doc.update(extensions)
    return json.dumps(doc, separators=(",", ":"), default=str).encode()


def _headers(content_type: str, payload: bytes, extra: Iterable[tuple[str, str]]) -> Headers:
    return [
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("Content-Length", str(len(payload))),
        *extra,
    ]


class Prepared(NamedTuple):
    """A complete constant response: send it with :func:`send`."""

    status: str
    headers: Headers
    body: bytes


def prepare(
    kind: str,
    detail: str | None = None,
    *,
    headers: Iterable[tuple[str, str]] = (),
    extensions: Mapping[str, Any] | None = None,
) -> Prepared:
    """Build a problem response once (in a layer's ``__init__``)."""
    payload = body(kind, detail, extensions)
    return Prepared(KINDS[kind].status, _headers(CONTENT_TYPE, payload, headers), payload)


def send(start_response: StartResponse, prepared: Prepared) -> list[bytes]:
    """Start a prepared response and return its body (the header list is copied)."""
    start_response(prepared.status, list(prepared.headers))
    return [prepared.body]


def response(
    kind: str,
    detail: str | None = None,
    *,
    headers: Iterable[tuple[str, str]] = (),
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """A problem response for an admin handler to return."""
    status, hdrs, payload = prepare(kind, detail, headers=headers, extensions=extensions)
    return status, hdrs, [payload]


def prepare_json(status: str, payload: Any, *, content_type: str = "application/json") -> Prepared:
    """A JSON response built once (compact; values JSON cannot hold become ``str``)."""
    data = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return Prepared(status, _headers(content_type, data, ()), data)


def json_response(status: str, payload: Any, *, content_type: str = "application/json") -> Response:
    """A successful JSON response for an admin handler to return (see :func:`prepare_json`)."""
    status, headers, data = prepare_json(status, payload, content_type=content_type)
    return status, headers, [data]


class ProblemError(Exception):
    """Raised by admin code for a client mistake; the Admin layer answers it as a problem."""

    def __init__(
        self,
        kind: str,
        detail: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown problem kind {kind!r}")
        super().__init__(detail or kind)
        self.kind = kind
        self.detail = detail
        self.headers = tuple(headers)
        self.extensions = extensions

    def response(self) -> Response:
        return response(self.kind, self.detail, headers=self.headers, extensions=self.extensions)
