"""The web application: ``create_app()`` is what gunicorn serves."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import swagger_ui_bundle
from flask import Flask, request, send_from_directory
from flask_smorest import abort
from peewee import InterfaceError, OperationalError
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.routing import IntegerConverter

from api import (
    admin,
    contacts,
    health,
    inbox,
    inbox_device,  # noqa: F401  (its routes are on inbox.blp)
    inbox_page,
    messages,
    notifications,
    observability,
    providers,
    ratelimit,
    reminders,
    search,
    templates,
    unsubscribe,
    webhook_endpoints,
    webpush,
)
from api.auth import authenticate, authenticate_user
from api.compat import DIALECTS
from api.errors import HeraldApi, escaped, register_error_handlers, text_problems
from models.db import database, is_sqlite, open_database
from settings import settings
from tasks import bind_broker
from tasks.broker import broker_bound
from tasks.logs import setup_logging
from tasks.metrics import setup_metrics

#: Blueprints under /v1, all behind API-key authentication.
V1_BLUEPRINTS = (
    notifications.blp,
    messages.blp,
    search.blp,
    templates.blp,
    contacts.blp,
    inbox.tokens_blp,
    reminders.blp,
    admin.blp,
    webhook_endpoints.blp,
)
BODY_METHODS = {"POST", "PUT", "PATCH"}
#: Retry-After of the 503 answered while the database cannot be reached.
DATABASE_RETRY_AFTER_SECONDS = 5
logger = logging.getLogger(__name__)
#: Requests that may send a CSV body instead of JSON.
CSV_REQUESTS = {("POST", "contacts.ContactImport")}


def create_app() -> Flask:
    """The application gunicorn serves: :func:`prepare_process`, then :func:`build_app`."""
    prepare_process()
    return build_app()


def prepare_process() -> None:
    """What the API needs of its process: logging and metrics set up, the database opened and
    the broker the API enqueues to bound (unless this process has them already)."""
    setup_logging()
    setup_metrics()
    if database.obj is None:
        open_database()
    if not broker_bound():
        bind_broker()


def build_app() -> Flask:
    """The application, with its blueprints and OpenAPI document; it connects to nothing
    itself (each request connects to the database :func:`create_app` opened)."""
    app = Flask("herald")
    app.url_map.converters["int"] = DatabaseInteger
    app.config.update(
        MAX_CONTENT_LENGTH=settings.MAX_REQUEST_BYTES,
        API_TITLE="Herald",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        API_SPEC_OPTIONS={
            "info": {"description": "Multi-channel notification service"},
            "security": [{"bearerAuth": []}],
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
    )
    api = HeraldApi(app)
    register_error_handlers(app, api)
    app.register_error_handler(OperationalError, lambda error: _database_unavailable(api, error))
    app.register_error_handler(InterfaceError, lambda error: _database_unavailable(api, error))
    api.register_blueprint(health.blp)
    api.register_blueprint(webpush.blp)
    api.register_blueprint(providers.blp)  # no API key: each provider signs its posts
    for blueprint in V1_BLUEPRINTS:
        api.register_blueprint(blueprint)
    api.register_blueprint(inbox.blp)
    for dialect in DIALECTS:
        api.register_blueprint(dialect.blueprint)
        if dialect.error_shape:
            api.error_shapes[dialect.prefix] = dialect.error_shape
    app.register_blueprint(inbox_page.page)
    app.register_blueprint(unsubscribe.page)  # no API key: the signed token is the authority
    _markdown_literals(api.spec._paths)

    guards = {blueprint.name: authenticate for blueprint in V1_BLUEPRINTS}
    guards[inbox.blp.name] = authenticate_user
    guards.update({dialect.blueprint.name: dialect.authenticate for dialect in DIALECTS})
    app.before_request(_limit_request_body)
    app.before_request(_connect_database)
    app.before_request(lambda: _guard(guards))
    ratelimit.init_app(app, api)  # after authentication, before the handler
    app.before_request(observability.log_sender)
    app.before_request(_refuse_unstorable_text)
    app.teardown_request(_release_database)
    app.teardown_request(observability.end_log_fields)
    observability.init_app(app)
    app.add_url_rule("/docs/assets/<path:filename>", "docs_assets", _docs_asset)
    return app


RST_LITERAL = re.compile(r"``(.+?)``", re.S)


def _markdown_literals(spec_part) -> None:
    """Docstrings become the OpenAPI summaries and descriptions, which Swagger UI reads as
    Markdown: their RST literals (text in double backticks) become Markdown ones (single
    backticks), in place."""
    items = spec_part.items() if isinstance(spec_part, dict) else enumerate(spec_part)
    for key, value in items:
        if key in ("summary", "description") and isinstance(value, str):
            spec_part[key] = RST_LITERAL.sub(r"`\1`", value)
        elif isinstance(value, dict | list):
            _markdown_literals(value)


def _guard(guards: dict[str, Callable[[], None]]) -> None:
    """Authenticate the request as its blueprint says (API key, user token, a dialect's
    rule); a body must then be JSON (or CSV where :data:`CSV_REQUESTS` allows)."""
    guard = guards.get(request.blueprint or "")
    if guard is None:
        return
    guard()
    if request.method in BODY_METHODS and not request.is_json:
        if (request.method, request.endpoint) in CSV_REQUESTS and request.mimetype == "text/csv":
            return
        abort(415)


class DatabaseInteger(IntegerConverter):
    """``<int:...>`` path segments up to the largest database integer; a longer one names
    no row (404) instead of overflowing the query."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def _refuse_unstorable_text() -> None:
    """A path segment or query parameter with NUL is a 400 naming it (PostgreSQL can neither
    store nor compare text with NUL); JSON bodies are checked as they are read."""
    errors: dict[str, list[str]] = {}
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and (problems := text_problems(value)):
            errors[name] = problems
    for name, values in request.args.lists():
        if problems := text_problems(name, name=True):
            errors[escaped(name)] = problems
        elif problems := sorted({p for value in values for p in text_problems(value)}):
            errors[name] = problems
    if errors:
        abort(400, errors=errors)


def attachment_request_limit() -> int:
    """The largest body of a request with attachments: MAX_ATTACHMENT_BYTES in base64 plus
    MAX_REQUEST_BYTES for the rest (text fields stay within MAX_REQUEST_BYTES by validation)."""
    return 4 * -(-settings.MAX_ATTACHMENT_BYTES // 3) + settings.MAX_REQUEST_BYTES


#: Requests allowed a larger body than MAX_REQUEST_BYTES, and their limit.
LARGE_REQUESTS = {
    ("POST", "notifications.Notifications"): attachment_request_limit,
    ("POST", "contacts.ContactImport"): lambda: settings.MAX_IMPORT_BYTES,
}


def _limit_request_body() -> None:
    limit = LARGE_REQUESTS.get((request.method, request.endpoint or ""))
    request.max_content_length = limit() if limit else settings.MAX_REQUEST_BYTES


def _connect_database() -> None:
    # the health check reports the database itself; metrics need none
    if request.blueprint != health.blp.name and request.endpoint != observability.METRICS_ENDPOINT:
        database.connect(reuse_if_open=True)


def _database_unavailable(api: HeraldApi, error: Exception):
    """The database cannot be reached (down, refusing, locked too long): a 503 with
    Retry-After in the error contract, not a 500."""
    logger.error("database unavailable: %r", error, exc_info=error)
    return api.handle_http_exception(ServiceUnavailable(retry_after=DATABASE_RETRY_AFTER_SECONDS))


def _release_database(exception=None) -> None:
    if not is_sqlite() and not database.is_closed():
        database.close()


def _docs_asset(filename: str):
    """Swagger UI's files, shipped by the swagger-ui-bundle package (the docs work offline)."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)
