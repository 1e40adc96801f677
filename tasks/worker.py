"""The worker process: ``dramatiq tasks.worker`` imports this module, which opens the database
and binds the broker from settings with every actor on it. It is an entry point: nothing
imports it."""

from models.db import open_database
from tasks import bind_broker

open_database()
#: The broker the worker consumes from (``dramatiq`` also finds it as the global broker).
broker = bind_broker()
