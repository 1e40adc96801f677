"""The JSON error contract: every 4xx/5xx is ``{"code", "status", "message", "errors"?}``.

Validation errors are 400 (webargs defaults to 422, which Herald keeps for an Idempotency-Key
reused with a different body) and name the offending field without the request location.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, has_request_context, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api, abort
from flask_smorest import Blueprint as SmorestBlueprint
from marshmallow import ValidationError
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

#: The deepest nesting of arrays and objects a JSON body may have.
MAX_JSON_DEPTH = 64
#: A UTF-16 surrogate: in a decoded JSON string only when the JSON escaped half a pair
#: (``"\ud800"``); such text cannot be encoded, stored or sent. NUL (``"\u0000"``) can be
#: neither stored in a PostgreSQL text column nor sent on most channels.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
LONE_SURROGATE = "Not valid Unicode: contains a lone surrogate (half of a UTF-16 pair)."
LONE_SURROGATE_IN_KEY = "Not valid Unicode: this name contains a lone surrogate."
NUL = "Must not contain the NUL character (U+0000)."
NUL_IN_KEY = "This name contains the NUL character (U+0000)."
TOO_DEEP = f"Nested too deeply (at most {MAX_JSON_DEPTH} levels)."
NOT_FINITE = "Not a finite number."
TOO_MANY_DIGITS = "A number with too many digits."


class ApiError(Exception):
    """Base of the errors the ``api`` layer raises itself (a body it cannot take in, a client
    that stalls); each becomes a response of the JSON error contract above."""


class _TooManyDigits:
    """Where the body has an integer longer than Python converts (sys.get_int_max_str_digits)."""


def _integer(text: str) -> int | _TooManyDigits:
    try:
        return int(text)
    except ValueError:
        return _TooManyDigits()


def text_problems(text: str, name: bool = False) -> list[str]:
    """Why ``text`` (a value, or with ``name`` an object key) cannot be taken in: it holds NUL
    or lone surrogates. Empty when it can."""
    problems: list[str] = []
    if _UNSTORABLE.search(text):
        if "\x00" in text:
            problems.append(NUL_IN_KEY if name else NUL)
        if _SURROGATE.search(text):
            problems.append(LONE_SURROGATE_IN_KEY if name else LONE_SURROGATE)
    return problems


def escaped(name: str) -> str:
    """A name as it can be shown in an error: NUL and lone surrogates as JSON escapes."""
    return "".join(f"\\u{ord(c):04x}" if _UNSTORABLE.match(c) else c for c in name)


def text_errors(document: Any) -> dict[str, Any]:
    """Where a parsed JSON document cannot be taken in, as nested error messages keyed by
    wire path (object keys as sent, list indices as strings; a key that is itself unusable is
    named :func:`escaped`): text with NUL or lone surrogates, numbers that are not finite or
    too long, and nesting past MAX_JSON_DEPTH (named at its top-level member). Empty when all
    is well. Iterative, so the deepest document json can parse is walked too."""
    errors: dict[str, Any] = {}
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            for message in text_problems(value):
                _add_error(errors, path or ("_schema",), message)
        elif isinstance(value, dict | list) and len(path) >= MAX_JSON_DEPTH:
            _add_error(errors, path[:1], TOO_DEEP)
        elif isinstance(value, dict):
            for key, item in value.items():
                if problems := text_problems(key, name=True):
                    for message in problems:
                        _add_error(errors, (*path, escaped(key)), message)
                else:
                    stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, str(index)), item) for index, item in enumerate(value))
        elif isinstance(value, _TooManyDigits):
            _add_error(errors, path or ("_schema",), TOO_MANY_DIGITS)
        elif isinstance(value, float) and not math.isfinite(value):
            _add_error(errors, path or ("_schema",), NOT_FINITE)
    return errors


def _add_error(errors: dict, path: tuple[str, ...], message: str) -> None:
    """Add ``message`` at ``path``; where a place has both its own messages and nested ones,
    its own are under ``_schema`` (marshmallow's convention)."""
    *parents, leaf = path
    for name in parents:
        node = errors.setdefault(name, {})
        if isinstance(node, list):
            node = errors[name] = {"_schema": node}
        errors = node
    messages = errors.setdefault(leaf, [])
    if isinstance(messages, dict):
        messages = messages.setdefault("_schema", [])
    if message not in messages:
        messages.append(message)


class InvalidText(ApiError, ValueError):
    """A JSON body Herald cannot take in; ``errors`` as :func:`text_errors`."""

    def __init__(self, errors: dict[str, Any]):
        super().__init__("The JSON body cannot be taken in")
        self.errors = errors


class TooDeep(InvalidText):
    """A JSON document nested past what the parser can recurse into."""

    def __init__(self) -> None:
        super().__init__({"json": [TOO_DEEP]})


def read_json(text: str | bytes, **kwargs: Any) -> Any:
    """A JSON document as Python values, or InvalidText naming each place it cannot be taken
    in (see :func:`text_errors`; a document too deep for the parser is ``{"json": [...]}``).
    Other unreadable JSON raises ValueError (``json.JSONDecodeError``)."""
    try:
        document = json.loads(text, parse_int=_integer, **kwargs)
    except RecursionError:
        raise TooDeep from None
    if errors := text_errors(document):
        raise InvalidText(errors)
    return document


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing bodies :func:`read_json` refuses (``request.get_json``)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return read_json(s, **kwargs)


class JSONRequest(Request):
    """A request whose unreadable JSON body is a 400 in the error contract."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, InvalidText):
            abort(400, errors=e.errors)
        if e is not None:
            abort(400, errors={"json": ["Invalid JSON body."]})
        return super().on_json_loading_failed(e)


class Parser(FlaskParser):
    """webargs' Flask parser: invalid input is a 400, and so is a JSON body
    :func:`read_json` refuses (webargs parses bodies itself, not through Flask's JSON)."""

    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return missing
        try:
            return read_json(req.get_data(cache=True).decode())
        except InvalidText as invalid:
            raise ValidationError(invalid.errors) from None


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
    429: "Too many requests; retry after Retry-After seconds.",
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
    """flask-smorest's Api, answering every error in the JSON contract, or in the words of the
    seed dialect whose path prefix the request is under (``error_shapes``: prefix → shape)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_shapes: dict[str, Callable[[dict[str, Any]], Any]] = {}

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        payload: dict[str, Any] = {
            "code": error.code,
            "status": error.name,
            "message": data.get("message")
            or (DEFAULT_MESSAGES.get(error.code) if error.code else None)
            or error.description,
        }
        errors = data.get("errors") or data.get("messages")
        if errors:
            payload["errors"] = flatten(errors)
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        headers.update(data.get("headers") or {})
        if has_request_context():
            for prefix, shape in self.error_shapes.items():
                if request.path == prefix or request.path.startswith(prefix + "/"):
                    return shape(payload), error.code, headers
        return payload, error.code, headers


def register_error_handlers(app: Flask, api: HeraldApi) -> None:
    """Errors raised before flask-smorest sees them (routing, body size, JSON read with
    ``request.get_json``) use the same contract."""
    app.request_class = JSONRequest
    app.json = JSONProvider(app)
    app.register_error_handler(HTTPException, api.handle_http_exception)
