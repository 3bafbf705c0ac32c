"""The Django app config: ``"voyagr_wsgi.django"`` in ``INSTALLED_APPS``.

``ready()`` registers voyagr's deploy checks with Django's system check framework
(:mod:`.checks`) and connects ``got_request_exception``, so a view's exception reaches the
Metrics layer (``environ["voyagr.exc_info"]``) although Django answers it with its 500 page.
"""

from __future__ import annotations

import sys
from typing import Any

from django.apps import AppConfig

from ..metrics.layer import EXC_INFO

__all__ = ["VoyagrConfig"]


class VoyagrConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints
    name = "voyagr_wsgi.django"
    label = "voyagr_wsgi"
    verbose_name = "voyagr_wsgi"

    def ready(self) -> None:
        from django.core import checks
        from django.core.signals import got_request_exception

        from .checks import voyagr_deploy_checks

        checks.register(voyagr_deploy_checks, checks.Tags.security, "voyagr", deploy=True)
        got_request_exception.connect(record_exception, dispatch_uid="voyagr_wsgi.exc_info")


def record_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """``got_request_exception`` receiver: the exception being handled, into the environ
    (``request.META`` is the WSGI environ) for the Metrics layer to record by type."""
    info = sys.exc_info()
    if request is not None and info[1] is not None:
        request.META[EXC_INFO] = info
