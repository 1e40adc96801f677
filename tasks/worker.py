"""The worker process: ``dramatiq tasks.worker`` imports this module in each worker process; it
sets up logging, opens the database, binds the broker from settings with every actor on it, and
adds the metrics (``tasks.metrics.use_worker_metrics``). It is an entry point: nothing imports
it."""

from models.db import open_database
from tasks import bind_broker
from tasks.logs import setup_logging
from tasks.metrics import use_worker_metrics

setup_logging()
open_database()
#: The broker the worker consumes from (``dramatiq`` also finds it as the global broker).
broker = bind_broker()
use_worker_metrics(broker)
