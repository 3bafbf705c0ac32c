"""A middleware that answers before any view: a 401 for /private/ without a token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpResponse


class TokenRequired:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        if request.path.startswith("/private/") and "HTTP_X_TOKEN" not in request.META:
            return HttpResponse("token required", status=401, content_type="text/plain")
        return self.get_response(request)
