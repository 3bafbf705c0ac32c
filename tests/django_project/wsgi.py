"""wsgi.py as the docs show it."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings")

from voyagr_wsgi.django import get_wsgi_application

application = get_wsgi_application()
