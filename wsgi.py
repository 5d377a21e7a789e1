"""gunicorn entry point: `gunicorn -c gunicorn.conf.py wsgi:app`."""

from runstats_app import create_app

app = create_app()
