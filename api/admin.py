"""``/v1/admin``: operators' views (admin API keys only)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import fields

from api.auth import current_sender
from api.errors import Blueprint
from models.runs import latest_runs
from tasks.broker import redis_client
from tasks.requests import CamelSchema

blp = Blueprint("admin", __name__, url_prefix="/v1/admin", description="Operators' views")


class JobRunSchema(CamelSchema):
    job = fields.String()
    last_run = fields.String()
    duration_seconds = fields.Float()
    counts = fields.Dict()
    next_run = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


@blp.route("/scheduler")
class SchedulerStatus(MethodView):
    @blp.response(200, JobRunSchema(many=True))
    def get(self):
        """Each scheduler job's last run: when, how long, what it did, and when it runs next."""
        if not current_sender().is_admin:
            abort(403, message="Only an admin API key may see this.")
        return latest_runs(redis_client())
