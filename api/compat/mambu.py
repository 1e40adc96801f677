"""Mambu's notifications API (seed ``001``) under ``/compat/mambu``: the message history search
and the resend of failed messages."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import abort

from api.auth import authenticate, current_sender, require
from api.compat.dialect import Dialect
from api.compat.mambu_schemas import (
    NOT_AN_INTEGER,
    PAGE_HEADERS,
    STATE_REASONS,
    STATES,
    MambuErrorSchema,
    MambuPageArgs,
    MambuReturnSchema,
    MambuSearchSchema,
    NotificationMessageSchema,
)
from api.errors import ApiError, Blueprint
from api.pagination import count_rows
from api.search import parsed_filter
from api.search_schemas import ResendSchema
from models.resend import ResendRefused, requeue_failed
from models.search import FIELDS, All, Condition, Node, Op, search_messages
from models.search import Any as AnyOf
from models.search_syntax import MAX_VALUES, InvalidFilter, mambu_filter
from models.sender import Sender
from models.states import FailureReason
from settings import settings
from tasks.deliver import ACTORS as DELIVER_ACTORS
from tasks.deliver import enqueue


class MambuBlueprint(Blueprint):
    """A blueprint whose operations document their errors in Mambu's shape (the dialect's
    ``error_shape`` answers every error under the prefix so)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._mambu_errors_doc)

    @staticmethod
    def _mambu_errors_doc(doc: dict, doc_info: dict, **kwargs) -> dict:
        responses = doc.setdefault("responses", {})
        errors = [status for status in responses if not str(status).startswith("2")]
        for status in {*errors, 400, 401, 403, "default"}:
            responses.pop(str(status), None)
            responses[status] = _error_response(status)
        return doc


def _error_response(status) -> dict:
    """A fresh response object (apispec resolves the schema in place) for an error status."""
    return {
        "description": f"Mambu's error body ({status})",
        "content": {"application/json": {"schema": MambuErrorSchema}},
    }


blp = MambuBlueprint(
    "compat_mambu",
    __name__,
    url_prefix="/compat/mambu",
    description="Mambu's notifications API: search the history, resend failed messages",
)


# --- search --------------------------------------------------------------------------------
class Refused(ApiError, ValueError):
    """A constraint the dialect cannot run; ``field`` is its key at fault (Mambu's name)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


#: Mambu's KEY and ENUM selections that Herald keeps as text (IN applies to them in Mambu).
TEXT_KEYS = {"RECIPIENT_USER_KEY", "EVENT"}
#: What each element of an ENUM or KEY selection takes: (value, values).
ENUM_ELEMENTS = {"EQUALS": ("value",), "IN": ("values",), "EMPTY": (), "NOT_EMPTY": ()}
OPERANDS = (("value", "value"), ("second_value", "secondValue"), ("values", "values"))
NO_GROUPS = (
    "Herald has no groups: a message goes to a person (RECIPIENT_CLIENT_KEY, their IDNP), a "
    "user (RECIPIENT_USER_KEY) or an address (DESTINATION)."
)
NO_CUSTOM_FIELDS = "Herald has no custom fields; only NATIVE fields can be searched."
REASONS = sorted({*FailureReason, *STATE_REASONS.values()})


def search_tree(constraints: list[dict], sender: Sender) -> Node:
    """Mambu's ``filterConstraints`` as one Herald search tree (constraints ANDed).

    Raises InvalidFilter naming each bad constraint by its index, or ForbiddenFilter."""
    nodes, errors = [], {}
    for index, constraint in enumerate(constraints):
        try:
            nodes.append(_constraint(constraint, sender))
        except Refused as refused:
            errors[index] = {refused.field: [refused.message]}
        except InvalidFilter as invalid:
            errors[index] = invalid.errors["filterConstraints"][0]
    if errors:
        raise InvalidFilter({"filterConstraints": errors})
    return All(tuple(nodes))


def _constraint(constraint: dict, sender: Sender) -> Node:
    if constraint.get("data_field_type") == "CUSTOM":
        raise Refused("dataFieldType", NO_CUSTOM_FIELDS)
    selection = constraint["filter_selection"].upper()
    element = constraint["filter_element"].upper()
    if selection == "RECIPIENT_GROUP_KEY":
        raise Refused("filterSelection", NO_GROUPS)
    if selection == "RECIPIENT_CLIENT_KEY":
        selection = "RECIPIENT_USER_KEY"
    if selection == "STATE":
        return _state(constraint, element)
    if selection == "FAILURE_REASON":
        return _failure_reason(constraint, element)
    if selection in TEXT_KEYS and element == "IN":
        values = tuple(_text(v) for v in _operands(constraint, selection, element))
        return Condition(FIELDS[selection], Op.IN, values)
    core = {
        key: constraint[key] for key in ("value", "second_value", "values") if key in constraint
    }
    return mambu_filter(
        [{"filter_selection": selection, "filter_element": element, **core}], sender
    )


def _operands(constraint: dict, selection: str, element: str) -> list:
    """The operands of an ENUM or KEY constraint: EQUALS a value, IN values, EMPTY none."""
    needed = ENUM_ELEMENTS.get(element)
    if needed is None:
        elements = ", ".join(ENUM_ELEMENTS)
        raise Refused("filterElement", f"{element} does not apply to {selection}; {elements}.")
    for key, wire in OPERANDS:
        given = constraint.get(key) is not None
        if given and wire not in needed:
            raise Refused(wire, f"{element} takes no {wire}.")
        if not given and wire in needed:
            raise Refused(wire, f"{element} needs {wire}.")
    if element == "EQUALS":
        return [constraint["value"]]
    if element == "IN" and not 0 < len(constraint["values"]) <= MAX_VALUES:
        raise Refused("values", f"Between 1 and {MAX_VALUES} values.")
    return constraint.get("values") or []


def _text(value, where: str = "values") -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 255:
        raise Refused(where, "Must be a string of 1 to 255 characters.")
    return value


def _choice(value, choices, selection: str, where: str) -> str:
    if not isinstance(value, str) or value.upper() not in choices:
        raise Refused(where, f"{selection} must be one of: {', '.join(choices)}.")
    return value.upper()


def _where(element: str) -> str:
    return "values" if element == "IN" else "value"


def _state(constraint: dict, element: str) -> Node:
    """STATE in Mambu's names: each stands for one or more of Herald's states."""
    field = FIELDS["STATE"]
    if element in ("EMPTY", "NOT_EMPTY"):
        _operands(constraint, "STATE", element)
        return Condition(field, Op(element.lower()))
    names = [
        _choice(value, list(STATES), "STATE", _where(element))
        for value in _operands(constraint, "STATE", element)
    ]
    herald = tuple(state for name in names for state in STATES[name])
    return Condition(field, Op.IN, herald) if herald else AnyOf(())


def _failure_reason(constraint: dict, element: str) -> Node:
    """FAILURE_REASON as shown: Herald's reason, or for a cancelled or expired message
    without one, CANCELLED or EXPIRED."""
    reason, state = FIELDS["FAILURE_REASON"], FIELDS["STATE"]
    fallback = tuple(STATE_REASONS)
    operands = _operands(constraint, "FAILURE_REASON", element)
    if element == "EMPTY":
        return All((Condition(reason, Op.EMPTY), Condition(state, Op.NIN, fallback)))
    if element == "NOT_EMPTY":
        return AnyOf((Condition(reason, Op.NOT_EMPTY), Condition(state, Op.IN, fallback)))
    parts: list[Node] = []
    for value in operands:
        name = _choice(value, REASONS, "FAILURE_REASON", _where(element))
        if name in FailureReason.__members__:
            parts.append(Condition(reason, Op.EQ, (name,)))
        states = tuple(s for s, shown in STATE_REASONS.items() if shown == name)
        if states:
            parts.append(All((Condition(reason, Op.EMPTY), Condition(state, Op.IN, states))))
    return AnyOf(tuple(parts))


@blp.route("/api/notifications/messages/search")
class MessageSearch(MethodView):
    @blp.arguments(MambuSearchSchema)
    @blp.arguments(MambuPageArgs, location="query")
    @blp.response(200, NotificationMessageSchema(many=True), headers=PAGE_HEADERS)
    def post(self, data, page):
        """Messages matching every filter constraint, newest first: Mambu's notification
        messages, ``limit`` (at most 1,000) from ``offset``."""
        sender = current_sender()
        query = search_messages(
            sender, parsed_filter(search_tree, data["filter_constraints"], sender)
        )
        items = list(query.offset(page["offset"]).limit(page["limit"]))
        headers = {}
        if page["pagination_details"] == "ON":
            total = min(count_rows(query, settings.SEARCH_COUNT_LIMIT), settings.SEARCH_COUNT_LIMIT)
            headers = {
                "Items-Offset": str(page["offset"]),
                "Items-Limit": str(page["limit"]),
                "Items-Total": str(total),
            }
        return items, 200, headers


# --- resend --------------------------------------------------------------------------------
@blp.route("/api/notifications/messages")
class MessageActions(MethodView):
    @blp.arguments(ResendSchema)
    @blp.response(200, MambuReturnSchema)
    def post(self, data):
        """Resend failed messages (the ``resend_failed`` permission): all of them, or none
        when any key is duplicated, unknown or not of a failed message."""
        sender = require("resend_failed")
        try:
            items = requeue_failed(sender, data["identifiers"], deliverable=DELIVER_ACTORS)
        except ResendRefused as refused:
            abort(400, message="Nothing was resent; see errors.", errors=refused.errors)
        enqueue(items, quiet=True)
        return {"return_code": 200, "return_status": "SUCCESS"}


# --- errors --------------------------------------------------------------------------------
#: HTTP status → Mambu's response code and status.
RETURN_CODES: dict[int, tuple[int, str]] = {
    400: (4, "INVALID_PARAMETERS"),
    401: (2, "INVALID_CREDENTIALS"),
    403: (15, "INVALID_PERMISSIONS"),
    404: (3, "INVALID_API_OPERATION"),
    405: (5, "METHOD_NOT_IMPLEMENTED"),
    413: (4, "INVALID_PARAMETERS"),
    415: (4, "INVALID_PARAMETERS"),
}
INTERNAL_ERROR = (6, "INTERNAL_ERROR")
#: A bad pagination parameter: (not a whole number, out of bounds).
PAGINATION_CODES = {
    "offset": (
        (11, "INVALID_PAGINATION_OFFSET_VALUE"),
        (12, "OUT_OF_BOUNDS_PAGINATION_OFFSET_VALUE"),
    ),
    "limit": ((13, "INVALID_PAGINATION_LIMIT_VALUE"), (14, "OUT_OF_BOUNDS_PAGINATION_LIMIT_VALUE")),
}


def _return_code(status: int, errors: dict | None) -> tuple[int, str]:
    if status == 400 and errors:
        for name, (invalid, out_of_bounds) in PAGINATION_CODES.items():
            if name in errors:
                return invalid if NOT_AN_INTEGER in errors[name] else out_of_bounds
    if status in RETURN_CODES:
        return RETURN_CODES[status]
    return INTERNAL_ERROR if status >= 500 else RETURN_CODES[400]


def error_source(errors: Any, path: str = "") -> str:
    """The first field at fault, as a path in Mambu's names (``filterConstraints[0].value``)."""
    if not isinstance(errors, dict) or not errors:
        return path
    key = next(iter(errors))
    name = str(key)
    if name == "_schema":
        step = path
    elif name.isdigit():
        step = f"{path}[{name}]"
    else:
        step = f"{path}.{name}" if path else name
    return error_source(errors[key], step)


def error_body(payload: dict[str, Any]) -> dict[str, Any]:
    """Herald's error payload in Mambu's shape: ``returnCode``, ``returnStatus`` and the first
    field at fault (``errorSource``), then Herald's own payload (``code``, ``status``,
    ``message``, ``errors``) as the detail, so a client of either contract reads it."""
    errors = payload.get("errors")
    code, status = _return_code(payload["code"], errors)
    body: dict[str, Any] = {"returnCode": code, "returnStatus": status}
    if errors:
        body["errorSource"] = error_source(errors)
    return body | payload


DIALECT = Dialect(blp, authenticate, error_body)
