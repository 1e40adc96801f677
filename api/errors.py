"""The JSON error contract: every 4xx/5xx is ``{"code", "status", "message", "errors"?}``.

Validation errors are 400 (webargs defaults to 422, which Herald keeps for an Idempotency-Key
reused with a different body) and name the offending field without the request location.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, Request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api, abort
from flask_smorest import Blueprint as SmorestBlueprint
from marshmallow import ValidationError
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

#: A UTF-16 surrogate: in a decoded JSON string only when the JSON escaped half a pair
#: (``"\ud800"``); such text cannot be encoded, stored or sent.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
LONE_SURROGATE = "Not valid Unicode: contains a lone surrogate (half of a UTF-16 pair)."
LONE_SURROGATE_IN_KEY = "Not valid Unicode: this name contains a lone surrogate."


def text_errors(document: Any) -> dict[str, Any]:
    """Where a parsed JSON document holds text that is not valid Unicode, as nested error
    messages keyed by wire path (object keys as sent, list indices as strings; a key that is
    itself invalid is named with the surrogate escaped, ``\\ud800``). Empty when all is
    valid. Iterative, so the deepest document json can parse is walked too."""
    errors: dict[str, Any] = {}
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                _add_error(errors, path or ("_schema",), LONE_SURROGATE)
        elif isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    escaped = key.encode("utf-8", "backslashreplace").decode()
                    _add_error(errors, (*path, escaped), LONE_SURROGATE_IN_KEY)
                else:
                    stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, str(index)), item) for index, item in enumerate(value))
    return errors


def _add_error(errors: dict, path: tuple[str, ...], message: str) -> None:
    *parents, leaf = path
    for name in parents:
        errors = errors.setdefault(name, {})
    errors.setdefault(leaf, []).append(message)


class InvalidText(ValueError):
    """A JSON body whose text is not valid Unicode; ``errors`` as :func:`text_errors`."""

    def __init__(self, errors: dict[str, Any]):
        super().__init__("JSON text is not valid Unicode")
        self.errors = errors


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing bodies with lone surrogates (``request.get_json``)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        document = super().loads(s, **kwargs)
        if errors := text_errors(document):
            raise InvalidText(errors)
        return document


class JSONRequest(Request):
    """A request whose unreadable JSON body is a 400 in the error contract."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, InvalidText):
            abort(400, errors=e.errors)
        if e is not None:
            abort(400, errors={"json": ["Invalid JSON body."]})
        return super().on_json_loading_failed(e)


class Parser(FlaskParser):
    """webargs' Flask parser: invalid input is a 400, and so is JSON text with lone
    surrogates (webargs parses bodies itself, not through Flask's JSON)."""

    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: Request) -> Any:
        document = super()._raw_load_json(req)
        if errors := text_errors(document):
            raise ValidationError(errors)
        return document


class Blueprint(SmorestBlueprint):
    """A flask-smorest blueprint whose invalid input is a 400."""

    ARGUMENTS_PARSER = Parser()

    def arguments(self, schema, **kwargs):
        """As flask-smorest's, with a schema class instantiated once here: webargs would
        otherwise build the schema and its nested schemas on every request (~0.4 ms a POST)."""
        return super().arguments(schema() if isinstance(schema, type) else schema, **kwargs)


DEFAULT_MESSAGES = {
    400: "The request is not valid; see errors.",
    401: "A valid API key is required: Authorization: Bearer <key>.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "The request body is too large.",
    415: "Content-Type must be application/json.",
    500: "Internal error; it has been logged.",
    503: "The service cannot answer for a moment; retry after Retry-After seconds.",
}


#: Where webargs reads arguments; its errors come keyed by these.
LOCATIONS = {"json", "query", "querystring", "headers", "form", "files", "view_args", "cookies"}


def flatten(messages: Any) -> Any:
    """``{"json": {"field": [...]}, "query": {...}}`` → ``{"field": [...], ...}``."""
    if not isinstance(messages, dict):
        return messages
    merged: dict[str, Any] = {}
    for key, errors in messages.items():
        if key in LOCATIONS and isinstance(errors, dict):
            merged.update(errors)
        else:
            merged[key] = errors
    return merged


class HeraldApi(Api):
    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        payload: dict[str, Any] = {
            "code": error.code,
            "status": error.name,
            "message": data.get("message") or DEFAULT_MESSAGES.get(error.code) or error.description,
        }
        errors = data.get("errors") or data.get("messages")
        if errors:
            payload["errors"] = flatten(errors)
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        return payload, error.code, headers


def register_error_handlers(app: Flask, api: HeraldApi) -> None:
    """Errors raised before flask-smorest sees them (routing, body size, JSON read with
    ``request.get_json``) use the same contract."""
    app.request_class = JSONRequest
    app.json = JSONProvider(app)
    app.register_error_handler(HTTPException, api.handle_http_exception)
