"""Trust a fixed number of reverse proxies in front: the client's address is the one they saw.

Only when the deployment says how many there are (RUNSTATS_TRUSTED_PROXIES):
otherwise X-Forwarded-For is whatever a client chose to send, and the address
is the peer's.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings


def init_app(app: Flask, settings: Settings) -> None:
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
