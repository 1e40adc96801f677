"""NotifyBC's ``filter`` query parameter for ``api.compat.notifybc``: read and bounded; an
admin's ``where`` translated to Herald's search syntax (``models.search_syntax``), a user's
evaluated over their records; ``fields`` and ``order``."""

from __future__ import annotations

from marshmallow import ValidationError

from api.compat.notifybc_schemas import RECORD_FIELDS, STATES, NotifyBCDate
from api.errors import InvalidText, TooDeep, read_json

DEFAULT_LIMIT, MAX_LIMIT, MAX_SKIP = 100, 500, 1_000_000


# --- the filter ----------------------------------------------------------------------------
FILTER_KEYS = {"where", "fields", "order", "skip", "offset", "limit", "include"}


def parsed_filter(raw: str | None) -> dict:
    """The ``filter`` JSON as a dict with ``skip`` and ``limit`` bounded; ValidationError
    (``{"filter": [...]}``) when it is not one."""
    if raw is None:
        return {"skip": 0, "limit": DEFAULT_LIMIT, "fields": None}
    try:
        spec = read_json(raw)
    except TooDeep:
        raise ValidationError({"filter": ["Nested too deeply."]}) from None
    except InvalidText as invalid:
        raise ValidationError({"filter": invalid.errors}) from None
    except ValueError:
        raise ValidationError({"filter": ["Not valid JSON."]}) from None
    if not isinstance(spec, dict) or not set(spec) <= FILTER_KEYS:
        raise ValidationError({"filter": [f"An object with: {', '.join(sorted(FILTER_KEYS))}."]})
    spec.setdefault("skip", spec.pop("offset", 0))
    spec.setdefault("limit", DEFAULT_LIMIT)
    for key, low, high in (("skip", 0, MAX_SKIP), ("limit", 1, MAX_LIMIT)):
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError({"filter": [f"{key}: a whole number from {low} to {high}."]})
    spec["fields"] = projection(spec.get("fields"))
    return spec


def projection(chosen) -> list[str] | None:
    """``fields`` (a name, a list of names, or ``{name: true|false}``) as the names shown."""
    if chosen is None:
        return None
    if isinstance(chosen, str):
        chosen = [chosen]
    if isinstance(chosen, dict):
        included = [key for key, on in chosen.items() if on]
        chosen = included or [key for key in RECORD_FIELDS if key not in chosen]
    if not isinstance(chosen, list) or not all(
        isinstance(key, str) and key in RECORD_FIELDS for key in chosen
    ):
        raise ValidationError({"filter": [f"fields: any of {', '.join(RECORD_FIELDS)}."]})
    return chosen


# --- where: an admin's in SQL (through models.search), a user's over their records ---------
#: NotifyBC's field → Herald's search name, for an admin's ``where`` (``models.search``).
SEARCHED = {
    "serviceName": "serviceName",
    "created": "createdAt",
    "state": "state",
    "userChannelId": "destination",
    "userId": "recipient",
    "channel": "channel",
}
#: Fields an admin's ``where`` takes only at its top level (columns of the notification).
TOP_LEVEL = ("isBroadcast", "channel")
MAX_CONDITIONS, MAX_DEPTH = 20, 4


def herald_where(where, path: str = "where", depth: int = 0) -> dict:
    """An admin's ``where`` in Herald's NotifyBC syntax (``models.search_syntax``): field names
    translated, ``state`` as the message states it stands for. ValidationError names
    ``filter``."""
    if not isinstance(where, dict) or depth > MAX_DEPTH:
        raise _bad(path, f"An object, at most {MAX_DEPTH} levels of and/or.")
    herald = {}
    for key, value in where.items():
        if key in ("and", "or"):
            if not isinstance(value, list) or not 0 < len(value) <= MAX_CONDITIONS:
                raise _bad(f"{path}.{key}", f"A list of 1 to {MAX_CONDITIONS} objects.")
            herald[key] = [
                herald_where(item, f"{path}.{key}[{i}]", depth + 1) for i, item in enumerate(value)
            ]
        elif key in TOP_LEVEL and depth == 0:
            continue
        elif key not in SEARCHED:
            names = ", ".join(sorted({*SEARCHED, *TOP_LEVEL}))
            raise _bad(f"{path}.{key}", f"Not filterable; one of: {names}.")
        else:
            herald[SEARCHED[key]] = _states(value, path) if key == "state" else value
    return herald


def _states(value, path: str):
    """A ``state`` condition on NotifyBC's states as one on the message states they cover."""
    operations = value if isinstance(value, dict) else {"eq": value}
    translated = {}
    for operator, operand in operations.items():
        listed = operand if operator in ("inq", "nin") else [operand]
        if operator not in ("eq", "neq", "inq", "nin") or not isinstance(listed, list):
            raise _bad(f"{path}.state", "eq, neq, inq or nin of: " + ", ".join(STATES))
        if unknown := [state for state in listed if state not in STATES]:
            raise _bad(
                f"{path}.state", f"Unknown state {unknown[0]!r}; one of: {', '.join(STATES)}."
            )
        states = [str(s) for name in listed for s in STATES[name]]
        translated["nin" if operator in ("neq", "nin") else "inq"] = states
    return translated


def top_level(where, name: str) -> list | None:
    """The values a top-level ``isBroadcast``/``channel`` condition allows (eq or inq)."""
    if not isinstance(where, dict) or name not in where:
        return None
    value = where[name]
    operations = value if isinstance(value, dict) else {"eq": value}
    if set(operations) - {"eq", "inq"} or len(operations) != 1:
        raise _bad(f"where.{name}", "A value, or {eq} or {inq}.")
    operator, operand = next(iter(operations.items()))
    values = operand if operator == "inq" else [operand]
    if not isinstance(values, list) or not 0 < len(values) <= MAX_CONDITIONS:
        raise _bad(f"where.{name}", f"A list of 1 to {MAX_CONDITIONS} values.")
    kind = bool if name == "isBroadcast" else str
    if not all(isinstance(v, kind) for v in values):
        raise _bad(f"where.{name}", f"Values of type {kind.__name__}.")
    return values


def _bad(path: str, message: str) -> ValidationError:
    return ValidationError({"filter": [f"{path}: {message}"]})


COMPARE = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
    "inq": lambda a, b: a in b,
    "nin": lambda a, b: a not in b,
}
DATES = {"created", "updated", "validTill", "invalidBefore"}


def record_matcher(where, path: str = "where", depth: int = 0, counter=None):
    """A user's ``where`` as a test of their records (their items are few: see
    ``USER_SCAN``), on NotifyBC's fields and operators; ValidationError names ``filter``."""
    counter = counter if counter is not None else [0]
    if not isinstance(where, dict) or depth > MAX_DEPTH:
        raise _bad(path, f"An object, at most {MAX_DEPTH} levels of and/or.")
    tests = []
    for key, value in where.items():
        if key in ("and", "or"):
            if not isinstance(value, list) or not 0 < len(value) <= MAX_CONDITIONS:
                raise _bad(f"{path}.{key}", f"A list of 1 to {MAX_CONDITIONS} objects.")
            parts = [
                record_matcher(item, f"{path}.{key}[{i}]", depth + 1, counter)
                for i, item in enumerate(value)
            ]
            combine = all if key == "and" else any
            tests.append(lambda r, parts=parts, combine=combine: combine(p(r) for p in parts))
            continue
        if key not in RECORD_FIELDS or key in ("readBy", "deletedBy"):
            raise _bad(f"{path}.{key}", f"Unknown field; one of: {', '.join(RECORD_FIELDS[:13])}.")
        operations = value if isinstance(value, dict) else {"eq": value}
        for operator, operand in operations.items():
            counter[0] += 1
            if operator not in COMPARE or counter[0] > MAX_CONDITIONS:
                raise _bad(f"{path}.{key}", f"At most {MAX_CONDITIONS} of: {', '.join(COMPARE)}.")
            tests.append(_comparison(key, operator, operand, f"{path}.{key}.{operator}"))
    return lambda r: all(test(r) for test in tests)


def _comparison(key: str, operator: str, operand, path: str):
    listed = operator in ("inq", "nin")
    if listed and (not isinstance(operand, list) or len(operand) > 100):
        raise _bad(path, "A list of at most 100 values.")
    values = operand if listed else [operand]
    if key in DATES:
        try:
            values = [None if v is None else NotifyBCDate().deserialize(v) for v in values]
        except ValidationError:
            raise _bad(path, "An ISO 8601 date or datetime.") from None
    elif not all(v is None or isinstance(v, str | int | float | bool) for v in values):
        raise _bad(path, "Text, numbers, booleans or null.")
    wanted = values if listed else values[0]
    compare = COMPARE[operator]

    def test(shown: dict) -> bool:
        try:
            return bool(compare(shown.get(key), wanted))
        except TypeError:
            return False

    return test


def record_order(order) -> tuple[str, bool]:
    """A user's ``order`` (``"created DESC"``, or a list whose first item is one)."""
    if isinstance(order, list) and order:
        order = order[0]
    name, _, direction = str(order).strip().partition(" ")
    if name not in RECORD_FIELDS or direction.strip().upper() not in ("", "ASC", "DESC"):
        raise ValidationError({"filter": ["order: a field name, then ASC or DESC."]})
    return name, direction.strip().upper() == "DESC"
