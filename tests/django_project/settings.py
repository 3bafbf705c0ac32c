"""Settings of the test project: what a user's settings.py looks like with voyagr."""

SECRET_KEY = "test-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
ROOT_URLCONF = "django_project.urls"
USE_TZ = True

INSTALLED_APPS = [
    "voyagr_wsgi.django",
]

MIDDLEWARE = [
    "voyagr_wsgi.django.middleware.VoyagrMiddleware",
    "django_project.middleware.TokenRequired",
    "django.middleware.csrf.CsrfViewMiddleware",
]

VOYAGR = {
    "ALLOWED_HOSTS": ALLOWED_HOSTS,
    "ACCESS_LOG_ENABLED": False,
}
