"""``/healthz``: is the database reachable, is the broker reachable."""

from __future__ import annotations

import logging

import dramatiq
from flask.views import MethodView
from marshmallow import Schema, fields

from api.errors import Blueprint
from models.db import database
from tasks.broker import breaker, ping

blp = Blueprint("health", __name__, description="Liveness and dependencies")
logger = logging.getLogger(__name__)

UNREACHABLE = "unreachable"


class HealthSchema(Schema):
    status = fields.String()
    database = fields.String()
    broker = fields.String()


def _check(probe) -> str:
    """``"ok"``, or UNREACHABLE if ``probe`` raises anything: the health check is a boundary,
    whatever stops a dependency from answering is the answer, its traceback logged."""
    try:
        probe()
    except Exception as error:
        logger.warning("health check failed: %r", error, exc_info=True)
        return UNREACHABLE
    return "ok"


def _ping_broker() -> None:
    with breaker.watch():
        ping(dramatiq.get_broker())


def _broker() -> str:
    """The broker's state. While the breaker is open (it failed moments ago) the broker is not
    asked, so that a hung one does not hold up the health check."""
    return UNREACHABLE if breaker.skips() else _check(_ping_broker)


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="A dependency is unreachable")
    def get(self):
        """200 when the database and the broker answer, 503 naming the one that does not.

        It opens its own database connection (the API's other calls answer 503 with
        Retry-After when the database is down)."""
        report = {
            "database": _check(lambda: database.execute_sql("SELECT 1")),
            "broker": _broker(),
        }
        healthy = all(value == "ok" for value in report.values())
        report["status"] = "ok" if healthy else "unavailable"
        return report, 200 if healthy else 503
