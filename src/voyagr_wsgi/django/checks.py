"""voyagr's deploy checks in Django's system check framework: ``manage.py check --deploy``.

The findings are those of ``voyagr-wsgi check`` (:func:`voyagr_wsgi.check.findings`) for the
settings the integration reads (``settings.VOYAGR`` over the environment), with the same ids:
``ERROR voyagr.E001`` becomes a ``checks.Error`` with id ``voyagr.E001``, ``WARNING
voyagr.W001`` a ``checks.Warning``. A ``VOYAGR`` value voyagr rejects is ``voyagr.E000``.
They are registered as deploy checks (tags ``security`` and ``voyagr``), so plain
``manage.py check`` and ``runserver`` stay quiet: ``manage.py check --deploy --tag voyagr``
shows voyagr's alone.
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from ..check import findings
from ..errors import ConfigurationError
from .conf import voyagr_environ

__all__ = ["voyagr_deploy_checks"]


def voyagr_deploy_checks(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from ..settings import Settings
    from .conf import with_django_defaults

    try:
        environ = voyagr_environ()
        settings = with_django_defaults(Settings.from_env(environ))
    except ConfigurationError as exc:
        return [checks.Error(str(exc), id="voyagr.E000")]
    found: list[checks.CheckMessage] = []
    for finding in findings(settings, environ):
        kind = checks.Error if finding.level == "ERROR" else checks.Warning
        found.append(kind(finding.message, id=finding.code))
    return found
