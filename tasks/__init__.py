"""Dramatiq tasks. ``dramatiq tasks`` imports this package: it binds the database and the broker
from settings, then declares the actors on that broker."""

from models.db import database, open_database
from tasks.broker import create_broker, use_broker

if database.obj is None:
    open_database()

use_broker(create_broker(), [])

from tasks.deliver import ACTORS  # noqa: E402  (actors bind to the broker set above)

__all__ = ["ACTORS"]
