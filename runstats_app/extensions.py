"""Extension objects, unbound until the app factory init_app's them."""

from __future__ import annotations

from flask_migrate import Migrate

from .database import Database
from .smorest import Api

db = Database()
api = Api()
migrate = Migrate()
