"""WSGI apps and a process harness for the real-gunicorn tests (test_gunicorn*, test_e2e*)."""
