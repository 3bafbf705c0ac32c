"""Views exercising each piece of the integration."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.csrf import csrf_exempt

from voyagr_wsgi.django import voyagr_csrf_exempt, voyagr_exempt, voyagr_limit


def user(request: Any, user_id: int) -> HttpResponse:
    if user_id == 404:
        raise Http404("no such user")
    return HttpResponse(f"user {user_id}", content_type="text/plain")


@voyagr_limit("3/minute")
def login(request: Any) -> HttpResponse:
    return HttpResponse("login", content_type="text/plain")


@voyagr_limit("2/minute;5/hour", name="search")
def search(request: Any) -> HttpResponse:
    return HttpResponse("search", content_type="text/plain")


@voyagr_exempt
def ping(request: Any, n: int) -> HttpResponse:
    return HttpResponse("pong", content_type="text/plain")


def plain(request: Any) -> HttpResponse:
    return HttpResponse("plain", content_type="text/plain")


@csrf_exempt
@voyagr_csrf_exempt
def webhook(request: Any) -> HttpResponse:
    return HttpResponse("hooked", content_type="text/plain")


@csrf_exempt
def form(request: Any) -> HttpResponse:
    return HttpResponse("posted", content_type="text/plain")


def boom(request: Any) -> HttpResponse:
    raise LookupError("the view failed")


def token(request: Any) -> JsonResponse:
    response = JsonResponse({"csrf": get_token(request)})
    response.set_cookie("prefs", "dark")
    return response


def private(request: Any) -> HttpResponse:
    return HttpResponse("secret", content_type="text/plain")


@voyagr_limit("2/minute", group="export")
def export_csv(request: Any) -> HttpResponse:
    return HttpResponse("csv", content_type="text/plain")


@voyagr_limit("2/minute", group="export")
def export_json(request: Any) -> HttpResponse:
    return HttpResponse("json", content_type="text/plain")
