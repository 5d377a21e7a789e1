"""The floor: the thinnest service on runstats' stack.

A Flask app, served by the same `gunicorn -c gunicorn.conf.py` settings as
runstats, whose stats route does one Redis GET and returns the stored bytes.
Nothing is parsed, validated, logged or measured: whatever runstats' warm
stats path costs beyond this is the price of its own work.

    FLOOR_REDIS_URL=redis://127.0.0.1:6379/14 FLOOR_KEY=runstats:bench:floor \
        gunicorn -c gunicorn.conf.py --workers 4 bench.floor_app:app
"""

from __future__ import annotations

import os

import redis
from flask import Flask, Response

REDIS_URL = os.environ.get("FLOOR_REDIS_URL", "redis://127.0.0.1:6379/14")
KEY = os.environ.get("FLOOR_KEY", "runstats:bench:floor")

app = Flask(__name__)
client = redis.Redis.from_url(REDIS_URL)


@app.get("/api/pipeline_runs/stats")
def stats() -> Response:
    body = client.get(KEY)
    if body is None:
        return Response(b'{"message":"no stored body"}', status=404, mimetype="application/json")
    return Response(body, mimetype="application/json")


@app.get("/healthz")
def healthz() -> Response:
    return Response(b"ok", mimetype="text/plain")
