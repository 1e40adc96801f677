"""``/v1/messages`` history: search (Mambu filter constraints), resend of failed messages, CSV
export; and the notification listing behind ``GET /v1/notifications`` (Hackney parameters and
the NotifyBC ``filter``). Every filter compiles through ``models.search``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from flask import Response, jsonify, make_response, stream_with_context
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError

from api.auth import current_sender, require
from api.errors import Blueprint
from api.notification_schemas import NotificationSchema, viewer
from api.pagination import HEADER, PageArgs, count_rows, paginate
from api.search_schemas import (
    ExportArgs,
    FilterConstraintSchema,
    MessageResultSchema,
    ResendResultSchema,
    ResendSchema,
    SearchSchema,
)
from models.message import Message
from models.privacy import destination_as_shown
from models.resend import ResendRefused, requeue_failed
from models.search import (
    DEFAULT_ORDER,
    FIELDS,
    All,
    Order,
    is_retained,
    iterate_messages,
    search_messages,
    search_notifications,
)
from models.search_syntax import (
    MAX_CONSTRAINTS,
    ForbiddenFilter,
    InvalidFilter,
    mambu_filter,
    notifybc_where,
    parameter_filter,
    parse_order,
)
from settings import settings
from tasks.deliver import ACTORS as DELIVER_ACTORS
from tasks.deliver import enqueue
from tasks.requests import camelcase

blp = Blueprint(
    "search",
    __name__,
    url_prefix="/v1/messages",
    description="Search, resend and export the message history",
)


def parsed_filter(parse, *args):
    """``parse(*args)``, with a bad filter answered 400 and a forbidden one 403."""
    try:
        return parse(*args)
    except InvalidFilter as invalid:
        abort(400, errors=invalid.errors)
    except ForbiddenFilter as forbidden:
        abort(403, message=str(forbidden))


@blp.route("/search")
class MessageSearch(MethodView):
    @blp.arguments(SearchSchema)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, MessageResultSchema(many=True))
    @blp.alt_response(403, description="A sender filtered on SENDER_KEY")
    def post(self, data, page):
        """Messages matching every filter constraint (Mambu's filter language), newest first."""
        sender = current_sender()
        node = parsed_filter(mambu_filter, data["filter_constraints"], sender)
        order = Order(FIELDS[data["sort_by"]], descending=data["sort_order"] == "DESC")
        query = search_messages(sender, node, order)
        items, headers = paginate(query, page, settings.SEARCH_COUNT_LIMIT)
        return items, 200, headers


@blp.route("")
class MessageActions(MethodView):
    @blp.arguments(ResendSchema)
    @blp.response(200, ResendResultSchema)
    @blp.alt_response(403, description="The key lacks the resend_failed permission")
    def post(self, data):
        """Resend failed messages: all of them go back to the queue, or none does. ``resent``
        counts those enqueued now; ``queued`` all put back, the rest (broker unavailable) wait
        for the replay job."""
        sender = require("resend_failed")
        try:
            items = requeue_failed(sender, data["identifiers"], deliverable=DELIVER_ACTORS)
        except ResendRefused as refused:
            abort(400, message="Nothing was resent; see errors.", errors=refused.errors)
        resent = enqueue(items, quiet=True)
        return {
            "return_code": 200,
            "return_status": "SUCCESS",
            "resent": resent,
            "queued": len(items),
        }


@blp.route("/export")
class MessageExport(MethodView):
    @blp.arguments(ExportArgs, location="query")
    @blp.response(200, {"type": "string"}, content_type="text/csv", description="CSV, streamed")
    def get(self, args):
        """Every matching message as CSV, oldest first, streamed in batches."""
        sender = current_sender()
        node = export_filter(sender, args)
        rows = csv_lines(export_rows(iterate_messages(sender, node)))
        return Response(
            stream_with_context(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": "attachment; filename=messages.csv"},
        )


def export_filter(sender, args: dict):
    """The export's query parameters and its optional ``filterConstraints`` JSON, ANDed."""
    raw = args.pop("filter_constraints", None)
    params = {camelcase(name): value for name, value in args.items()}
    node = parsed_filter(parameter_filter, params, sender)
    if raw is None:
        return node
    try:
        loaded = json.loads(raw)
        if not isinstance(loaded, list) or len(loaded) > MAX_CONSTRAINTS:
            raise ValidationError(f"A JSON list of at most {MAX_CONSTRAINTS} constraints.")
        constraints = FilterConstraintSchema(many=True).load(loaded)
    except (ValueError, ValidationError) as error:
        messages = getattr(error, "messages", [str(error)])
        abort(400, errors={"filterConstraints": messages})
    return All((node, parsed_filter(mambu_filter, constraints, sender)))


CSV_COLUMNS = [field.data_key for field in MessageResultSchema().fields.values()]


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def export_rows(messages: Iterable[Message]) -> Iterator[dict]:
    """Each message as ``MessageResultSchema`` dumps it (the same keys and values, a test
    compares them), made without marshmallow: dumping a row through a schema cost 0.2–0.35 ms,
    minutes of CPU for a million rows."""
    shown_to = viewer()
    for message in messages:
        retained = is_retained(message)
        notification = message.notification
        yield {
            "retained": retained,
            "destination": destination_as_shown(shown_to, message) if retained else None,
            "subject": message.subject if retained else None,
            "body": message.body if retained else None,
            "id": str(message.id),
            "notificationId": str(message.notification_id),
            "channel": message.channel,
            "state": message.state,
            "failureReason": message.failure_reason,
            "event": notification.event,
            "serviceName": notification.service_name,
            "reference": notification.reference,
            "attempts": message.attempts,
            "createdAt": _iso(message.created_at),
            "sentAt": _iso(message.sent_at),
            "deliveredAt": _iso(message.delivered_at),
            "readAt": _iso(message.read_at),
        }


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(rows: Iterable[dict], batch: int = 500) -> Iterator[str]:
    """A header line, then the rows as CSV, a batch of lines per chunk; cells that a
    spreadsheet would run as formulas are quoted with a leading apostrophe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
        if count % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- GET /v1/notifications -----------------------------------------------------------------
NOTIFYBC_KEYS = {"where", "fields", "order", "skip", "limit"}


def notification_listing(args: dict) -> Response:
    """Notifications matching the listing's query parameters and NotifyBC ``filter``, newest
    first unless the filter orders them, a page (or ``skip``/``limit``) at a time."""
    sender = current_sender()
    spec = _notifybc(args.pop("filter", None))
    page = {"page": args.pop("page"), "page_size": args.pop("page_size")}
    params = {camelcase(name): value for name, value in args.items()}
    node = parsed_filter(parameter_filter, params, sender)
    if "where" in spec:
        node = All((node, parsed_filter(notifybc_where, spec["where"], sender)))
    order = DEFAULT_ORDER
    if "order" in spec:
        field, descending = parsed_filter(parse_order, spec["order"], "filter")
        order = Order(field, descending)
    query = search_notifications(sender, node, order)
    if "skip" in spec or "limit" in spec:
        items = list(query.offset(spec.get("skip", 0)).limit(spec.get("limit", 50)))
        total = min(count_rows(query, settings.SEARCH_COUNT_LIMIT), settings.SEARCH_COUNT_LIMIT)
        header = {"total": total, "skip": spec.get("skip", 0), "limit": len(items)}
        headers = {HEADER: json.dumps(header)}
    else:
        items, headers = paginate(query, page, settings.SEARCH_COUNT_LIMIT)
    schema = NotificationSchema(many=True, only=_projection(spec.get("fields")))
    return make_response(jsonify(schema.dump(items)), 200, headers)


def _notifybc(raw: str | None) -> dict:
    if raw is None:
        return {}
    try:
        spec = json.loads(raw)
    except ValueError:
        abort(400, errors={"filter": ["Not valid JSON."]})
    if not isinstance(spec, dict) or not set(spec) <= NOTIFYBC_KEYS:
        abort(400, errors={"filter": [f"A JSON object with: {', '.join(sorted(NOTIFYBC_KEYS))}."]})
    for key, low, high in (("skip", 0, 1_000_000), ("limit", 1, 200)):
        value = spec.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            abort(400, errors={"filter": [f"{key}: a whole number from {low} to {high}."]})
    return spec


def _projection(chosen) -> list[str] | None:
    if chosen is None:
        return None
    names = {field.data_key or name: name for name, field in NotificationSchema().fields.items()}
    if isinstance(chosen, dict):
        included = [key for key, on in chosen.items() if on]
        chosen = included or [key for key in names if key not in chosen]
    if not isinstance(chosen, list) or not all(
        isinstance(key, str) and key in names for key in chosen
    ):
        abort(400, errors={"filter": [f"fields: any of {', '.join(names)}."]})
    return [names[key] for key in chosen]
