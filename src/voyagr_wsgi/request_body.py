"""Reading an admin request body: capped, JSON only, parsed depth-safely, fields checked.

Admin handlers that take a body call :func:`read_json` and then pick fields with
:func:`number` and :func:`text`; every client mistake is raised as a
:class:`~voyagr_wsgi.problem.ProblemError`, which the :class:`~voyagr_wsgi.admin.Admin`
layer answers as an RFC 9457 problem, so hostile input is never a 500::

    def mute(environ, params):
        doc = read_json(environ, max_bytes=4096)
        seconds = number(doc, "seconds", minimum=0, maximum=7 * 86400)
        ...

- ``415 unsupported-media-type``: the Content-Type is not ``application/json`` or ``*+json``;
- ``413 body-too-large``: over ``max_bytes`` (default 64 KiB), declared or streamed;
- ``400 malformed-body``: not UTF-8 JSON, ``NaN``/``Infinity``, or nested deeper than
  ``max_depth`` (32) arrays/objects (checked before parsing, so ``[[[[...`` cannot exhaust
  the parser's recursion);
- ``422 invalid-body``: not an object, a field of the wrong type, or out of range. Numbers
  are range-checked before any conversion: a 400-digit integer is refused, not overflowed.

The body is read with ``werkzeug.wrappers.Request`` (``max_content_length``, chunked bodies
through ``wsgi.input_terminated``); werkzeug is imported on the first call.
"""

from __future__ import annotations

import json
from typing import Any

from ._wsgi import Environ
from .problem import ProblemError

__all__ = ["MAX_BODY", "MAX_DEPTH", "number", "read_json", "text"]

MAX_BODY = 64 * 1024  # bytes
MAX_DEPTH = 32  # nested arrays / objects

#: every byte but the four brackets, deleted to count nesting
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _strip_strings(data: bytes) -> bytes:
    """``data`` without its JSON string literals (brackets inside strings do not nest)."""
    if b'"' not in data:
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        q = data.find(b'"', i)
        if q == -1:
            out += data[i:]
            break
        out += data[i:q]
        i = q + 1
        while True:  # to the closing quote, skipping escapes
            j = data.find(b'"', i)
            if j == -1:
                return bytes(out)  # unterminated: json.loads will refuse it
            k = j - 1
            while k >= i and data[k] == 0x5C:  # count the backslashes before the quote
                k -= 1
            i = j + 1
            if (j - 1 - k) % 2 == 0:
                break
    return bytes(out)


def _depth(data: bytes) -> int:
    depth = peak = 0
    for c in _strip_strings(data).translate(None, _NOT_BRACKETS):
        if c in (0x5B, 0x7B):
            depth += 1
            peak = max(peak, depth)
        else:
            depth -= 1
    return peak


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json(environ: Environ, *, max_bytes: int = MAX_BODY, max_depth: int = MAX_DEPTH) -> Any:
    """The request body as JSON, read with a size cap and parsed depth-safely.

    Raises :class:`ProblemError`: ``unsupported-media-type`` (415) unless the Content-Type
    is ``application/json`` or ``*+json``; ``body-too-large`` (413) over ``max_bytes``;
    ``malformed-body`` (400) for anything ``json.loads`` refuses, ``NaN``/``Infinity``, or
    nesting deeper than ``max_depth``.
    """
    from werkzeug.exceptions import RequestEntityTooLarge
    from werkzeug.wrappers import Request

    request = Request(environ)
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ProblemError("unsupported-media-type", "send the body as application/json")
    # one byte over the cap: a streamed (chunked) body stops there without an error, so
    # reading max_bytes + 1 bytes is how an over-long one shows itself
    request.max_content_length = max_bytes + 1
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise ProblemError("body-too-large", f"the body is limited to {max_bytes} bytes") from None
    if len(data) > max_bytes:
        raise ProblemError("body-too-large", f"the body is limited to {max_bytes} bytes")
    if _depth(data) > max_depth:
        raise ProblemError("malformed-body", f"JSON nests deeper than {max_depth} levels")
    try:
        return json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise ProblemError("malformed-body", "the body is not valid JSON") from None


def number(doc: Any, key: str, *, minimum: float, maximum: float) -> float:
    """``doc[key]`` as a finite float within ``(minimum, maximum]`` (422 otherwise); a huge
    integer is compared before it is converted, so it cannot overflow."""
    if not isinstance(doc, dict):
        raise ProblemError("invalid-body", "expected a JSON object")
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProblemError("invalid-body", f"{key} must be a number")
    if not (minimum < value <= maximum):  # exact for ints of any size, False for NaN
        raise ProblemError("invalid-body", f"{key} must be in ({minimum:g}, {maximum:g}]")
    return float(value)


def text(doc: Any, key: str, *, default: str = "", max_length: int = 1024) -> str:
    """``doc[key]`` as a string of at most ``max_length`` characters (422 otherwise)."""
    if not isinstance(doc, dict):
        raise ProblemError("invalid-body", "expected a JSON object")
    value = doc.get(key, default)
    if not isinstance(value, str):
        raise ProblemError("invalid-body", f"{key} must be a string")
    if len(value) > max_length:
        raise ProblemError("invalid-body", f"{key} is limited to {max_length} characters")
    return value
