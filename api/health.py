"""``/healthz``: is the database reachable, is the broker reachable."""

from __future__ import annotations

import logging

import dramatiq
from flask.views import MethodView

from api.errors import Blueprint
from api.schemas import HealthSchema
from models.db import database
from tasks.broker import ping

blp = Blueprint("health", __name__, description="Liveness and dependencies")
logger = logging.getLogger(__name__)


def _check(probe) -> str:
    try:
        probe()
    except Exception as error:  # any failure means "not reachable"; the reason goes to the log
        logger.warning("health check failed: %r", error)
        return "unreachable"
    return "ok"


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="A dependency is unreachable")
    def get(self):
        """200 when the database and the broker answer, 503 otherwise."""
        report = {
            "database": _check(lambda: database.execute_sql("SELECT 1")),
            "broker": _check(lambda: ping(dramatiq.get_broker())),
        }
        healthy = all(value == "ok" for value in report.values())
        report["status"] = "ok" if healthy else "unavailable"
        return report, 200 if healthy else 503
