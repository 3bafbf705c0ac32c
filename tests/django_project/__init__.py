"""A small real Django project for the integration tests (settings, urls, views, wsgi.py).

In-process tests call :func:`setup` (Django's settings are process-wide: every in-process
test uses this project, other URLconfs through ``override_settings``); the gunicorn tests
serve ``django_project.wsgi:application``.
"""

from __future__ import annotations

import os


def setup() -> None:
    """Configure Django with this project's settings, once per process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
