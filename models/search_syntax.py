"""The surface syntaxes of history search, each parsed into one ``models.search`` tree:
Mambu's ``filterConstraints`` (``mambu_filter``), NotifyBC's ``where`` (``notifybc_where``) and
the plain query parameters of a listing or an export (``parameter_filter``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from models.base import OUT_OF_CALENDAR, in_calendar, utcnow
from models.errors import ModelError
from models.search import BY_ALIAS, FIELDS, All, Any, Condition, FieldType, Node, Op, SearchField
from models.sender import Sender

#: The most constraints one search may combine, in any syntax.
MAX_CONSTRAINTS = 20
#: The most values one ``IN`` (``inq``, ``nin``) may list.
MAX_VALUES = 100
MAX_STRING = 255
MAX_LAST_DAYS = 36_500
MAX_DEPTH = 4


class InvalidFilter(ModelError):
    """The filter cannot be run; ``errors`` says where, in the error contract's shape."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


class ForbiddenFilter(ModelError):
    """The filter names a field the caller may not filter on (SENDER_KEY, for a sender)."""


class _Problem(ModelError, ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


# --- values --------------------------------------------------------------------------------
def instant(raw, where: str = "value") -> tuple[datetime, bool]:
    """An ISO date or datetime as an aware UTC datetime (naive means UTC), and whether it was a
    date alone (which then stands for that whole UTC day). Every date search computes with
    goes through here: one outside ``models.base.in_calendar`` is refused."""
    if not isinstance(raw, str) or len(raw) > 40:
        raise _Problem(where, "Must be an ISO 8601 date or datetime.")
    try:
        if len(raw) == 10:
            moment, whole_day = datetime.combine(date.fromisoformat(raw), time(), UTC), True
        else:
            moment, whole_day = datetime.fromisoformat(raw), False
    except ValueError:
        raise _Problem(where, f"Not an ISO 8601 date or datetime: {raw!r}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not in_calendar(moment):
        raise _Problem(where, OUT_OF_CALENDAR)
    return moment.astimezone(UTC), whole_day


def parse_value(field: SearchField, raw, where: str = "value"):
    """``raw`` as a value of ``field``'s type; enum values are case-insensitive."""
    if field.type == FieldType.DATE:
        return instant(raw, where)[0]
    if field.type == FieldType.NUMBER or field.name == "SENDER_KEY":
        return _integer(raw, where)
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _Problem(where, "Must be a string.")
    text = str(raw)
    if len(text) > MAX_STRING:
        raise _Problem(where, f"At most {MAX_STRING} characters.")
    if field.type == FieldType.KEY:
        try:
            return UUID(text)
        except ValueError:
            raise _Problem(where, f"Not a valid id: {text!r}.") from None
    if field.type == FieldType.ENUM:
        if text.lower() not in field.choices:
            allowed = ", ".join(sorted({*field.choices.values()}))
            raise _Problem(where, f"{field.name} must be one of: {allowed}.")
        return field.choices[text.lower()]
    return text


def _integer(raw, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str) or len(str(raw)) > 12:
        raise _Problem(where, "Must be an integer.")
    try:
        return int(raw)
    except ValueError:
        raise _Problem(where, f"Not an integer: {raw!r}.") from None


def _day_after(moment: datetime) -> datetime:
    return moment + timedelta(days=1)


def _range(field: SearchField, start: datetime, end: datetime | None) -> Node:
    lower = Condition(field, Op.GTE, (start,))
    return lower if end is None else All((lower, Condition(field, Op.LT, (end,))))


def calendar_period(element: str, now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar day, ISO week, month or year around ``now``."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    if element == "TODAY":
        return today, _day_after(today)
    if element == "THIS_WEEK":
        start = today - timedelta(days=today.weekday())
        return start, start + timedelta(days=7)
    if element == "THIS_MONTH":
        start = today.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1)
    start = today.replace(month=1, day=1)
    return start, start.replace(year=start.year + 1)


# --- Mambu filterConstraints ---------------------------------------------------------------
K, S, E, D, N = FieldType.KEY, FieldType.STRING, FieldType.ENUM, FieldType.DATE, FieldType.NUMBER
#: Each filter element and the field types it applies to (Mambu's table).
ELEMENTS: dict[str, set[FieldType]] = {
    "EQUALS": {K, S, E, N},
    "MORE_THAN": {N},
    "LESS_THAN": {N},
    "BETWEEN": {N, D},
    "ON": {D},
    "AFTER": {D},
    "BEFORE": {D},
    "STARTS_WITH": {S},
    "IN": {K, E},
    "TODAY": {D},
    "THIS_WEEK": {D},
    "THIS_MONTH": {D},
    "THIS_YEAR": {D},
    "LAST_DAYS": {D},
    "EMPTY": {K, S, E, D, N},
    "NOT_EMPTY": {K, S, E, D, N},
}
NO_VALUE = {"TODAY", "THIS_WEEK", "THIS_MONTH", "THIS_YEAR", "EMPTY", "NOT_EMPTY"}
#: What each element needs: value, secondValue, values.
ARITY = {"BETWEEN": (True, True, False), "IN": (False, False, True)} | {
    element: (False, False, False) for element in NO_VALUE
}
WIRE = {"value": "value", "second_value": "secondValue", "values": "values"}


def mambu_filter(constraints: list[dict], sender: Sender, now: datetime | None = None) -> Node:
    """Mambu ``filterConstraints`` (loaded, snake_case keys), ANDed, as a search tree.

    Raises InvalidFilter naming each bad constraint's index, or ForbiddenFilter.
    """
    now = now or utcnow()
    nodes, errors = [], {}
    for index, constraint in enumerate(constraints):
        try:
            nodes.append(_constraint(constraint, sender, now))
        except _Problem as problem:
            errors[index] = {problem.field: [problem.message]}
    if errors:
        raise InvalidFilter({"filterConstraints": errors})
    return All(tuple(nodes))


def _constraint(constraint: dict, sender: Sender, now: datetime) -> Node:
    field = FIELDS.get(constraint["filter_selection"].upper())
    if field is None:
        raise _Problem("filterSelection", f"Unknown; one of: {', '.join(FIELDS)}.")
    if field.admin_only and not sender.is_admin:
        raise ForbiddenFilter(f"Only an admin key may filter on {field.name}.")
    element = constraint["filter_element"].upper()
    if element not in ELEMENTS:
        raise _Problem("filterElement", f"Unknown; one of: {', '.join(ELEMENTS)}.")
    if field.type not in ELEMENTS[element]:
        message = f"{element} does not apply to {field.name}, a {field.type} field."
        raise _Problem("filterElement", message)
    for key, needed in zip(WIRE, ARITY.get(element, (True, False, False)), strict=True):
        given = constraint.get(key) is not None
        if needed and not given:
            raise _Problem(WIRE[key], f"{element} needs {WIRE[key]}.")
        if given and not needed:
            raise _Problem(WIRE[key], f"{element} takes no {WIRE[key]}.")
    if element in ("EMPTY", "NOT_EMPTY"):
        return Condition(field, Op(element.lower()))
    if element == "IN":
        values = constraint["values"]
        if not values or len(values) > MAX_VALUES:
            raise _Problem("values", f"Between 1 and {MAX_VALUES} values.")
        return Condition(field, Op.IN, tuple(parse_value(field, v, "values") for v in values))
    if field.type == FieldType.DATE:
        return _date_constraint(field, element, constraint, now)
    value = parse_value(field, constraint["value"])
    if element == "BETWEEN":
        second = parse_value(field, constraint["second_value"], "secondValue")
        return Condition(field, Op.BETWEEN, (value, second))
    ops = {"EQUALS": Op.EQ, "MORE_THAN": Op.GT, "LESS_THAN": Op.LT, "STARTS_WITH": Op.PREFIX}
    return Condition(field, ops[element], (value,))


def _date_constraint(field: SearchField, element: str, constraint: dict, now: datetime) -> Node:
    if element in ("TODAY", "THIS_WEEK", "THIS_MONTH", "THIS_YEAR"):
        return _range(field, *calendar_period(element, now))
    if element == "LAST_DAYS":
        days = constraint["value"]
        if isinstance(days, str) and days.isascii() and days.isdigit() and len(days) <= 6:
            days = int(days)
        if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= MAX_LAST_DAYS:
            raise _Problem(
                "value", f"LAST_DAYS needs a whole number of days, 1 to {MAX_LAST_DAYS}."
            )
        today = calendar_period("TODAY", now)[0]
        return _range(field, today - timedelta(days=days - 1), None)
    moment, whole_day = instant(constraint["value"])
    if element == "ON":
        day = datetime.combine(moment.date(), time(), UTC)
        return _range(field, day, _day_after(day))
    if element == "AFTER":
        op = Op.GTE if whole_day else Op.GT
        return Condition(field, op, (_day_after(moment) if whole_day else moment,))
    if element == "BEFORE":
        return Condition(field, Op.LT, (moment,))
    end, end_whole_day = instant(constraint["second_value"], "secondValue")
    if end_whole_day:
        return _range(field, moment, _day_after(end))
    return Condition(field, Op.BETWEEN, (moment, end))


# --- NotifyBC where ------------------------------------------------------------------------
OPERATORS = {
    "eq": Op.EQ,
    "neq": Op.NEQ,
    "gt": Op.GT,
    "gte": Op.GTE,
    "lt": Op.LT,
    "lte": Op.LTE,
    "inq": Op.IN,
    "nin": Op.NIN,
    "between": Op.BETWEEN,
    "like": Op.LIKE,
}
ORDERED = {FieldType.DATE, FieldType.NUMBER}


def notifybc_where(where, sender: Sender) -> Node:
    """A NotifyBC (LoopBack) ``where`` object as a search tree: ``{field: value}``,
    ``{field: {operator: value}}``, nested ``and``/``or`` lists.

    Raises InvalidFilter (``{"filter": ["where.path: problem"]}``) or ForbiddenFilter.
    """
    counter = [0]
    try:
        return _where(where, sender, "where", 0, counter)
    except _Problem as problem:
        raise InvalidFilter({"filter": [f"{problem.field}: {problem.message}"]}) from None


def _where(where, sender: Sender, path: str, depth: int, counter: list[int]) -> Node:
    if not isinstance(where, dict) or not where:
        raise _Problem(path, "Must be a non-empty object.")
    if depth > MAX_DEPTH:
        raise _Problem(path, f"At most {MAX_DEPTH} levels of and/or.")
    parts = []
    for key, value in where.items():
        if key in ("and", "or"):
            if not isinstance(value, list) or not 0 < len(value) <= MAX_CONSTRAINTS:
                raise _Problem(f"{path}.{key}", f"A list of 1 to {MAX_CONSTRAINTS} objects.")
            items = [
                _where(item, sender, f"{path}.{key}[{i}]", depth + 1, counter)
                for i, item in enumerate(value)
            ]
            parts.append(All(tuple(items)) if key == "and" else Any(tuple(items)))
            continue
        parts.extend(_field_conditions(key, value, sender, f"{path}.{key}", counter))
    return All(tuple(parts))


def _field_conditions(name: str, value, sender: Sender, path: str, counter: list[int]) -> list:
    field = BY_ALIAS.get(name)
    if field is None:
        raise _Problem(path, f"Unknown field; one of: {', '.join(BY_ALIAS)}.")
    if field.admin_only and not sender.is_admin:
        raise ForbiddenFilter(f"Only an admin key may filter on {name}.")
    operations = value if isinstance(value, dict) else {"eq": value}
    conditions = []
    for operator, operand in operations.items():
        counter[0] += 1
        if counter[0] > MAX_CONSTRAINTS:
            raise _Problem(path, f"At most {MAX_CONSTRAINTS} conditions in one filter.")
        conditions.append(_operation(field, operator, operand, f"{path}.{operator}"))
    return conditions


def _operation(field: SearchField, operator: str, operand, path: str) -> Condition:
    op = OPERATORS.get(operator)
    if op is None:
        raise _Problem(path, f"Unknown operator; one of: {', '.join(OPERATORS)}.")
    if op in (Op.GT, Op.GTE, Op.LT, Op.LTE, Op.BETWEEN) and field.type not in ORDERED:
        raise _Problem(path, f"{operator} applies to dates and numbers only.")
    if op == Op.LIKE and field.type != FieldType.STRING:
        raise _Problem(path, "like applies to text fields only.")
    if op in (Op.IN, Op.NIN, Op.BETWEEN):
        size = (2, 2) if op == Op.BETWEEN else (1, MAX_VALUES)
        if not isinstance(operand, list) or not size[0] <= len(operand) <= size[1]:
            raise _Problem(path, f"A list of {size[0]} to {size[1]} values.")
        return Condition(field, op, tuple(parse_value(field, v, path) for v in operand))
    if operand is None and op in (Op.EQ, Op.NEQ):
        return Condition(field, op, (None,))
    return Condition(field, op, (parse_value(field, operand, path),))


def parse_order(order, where: str = "order") -> tuple[SearchField, bool]:
    """``"createdAt DESC"`` (or a list whose first item is such) as (field, descending)."""
    if isinstance(order, list) and order:
        order = order[0]
    name, _, direction = str(order).strip().partition(" ")
    field = BY_ALIAS.get(name)
    if field is None or direction.strip().upper() not in ("", "ASC", "DESC"):
        raise InvalidFilter({where: ["A field name, then ASC or DESC."]})
    return field, direction.strip().upper() != "ASC"


# --- query parameters ----------------------------------------------------------------------
def parameter_filter(params: dict[str, str], sender: Sender) -> Node:
    """Listing and export query parameters (camelCase names of searchable fields, and
    ``createdFrom``/``createdTo``), ANDed as equalities and a creation date range."""
    parts, errors = [], {}
    for name, raw in params.items():
        try:
            parts.append(_parameter(name, raw, sender))
        except _Problem as problem:
            errors[name] = [problem.message]
    if errors:
        raise InvalidFilter(errors)
    return All(tuple(parts))


def _parameter(name: str, raw: str, sender: Sender) -> Node:
    created = FIELDS["CREATION_DATE"]
    if name == "createdFrom":
        return Condition(created, Op.GTE, (instant(raw, name)[0],))
    if name == "createdTo":
        moment, whole_day = instant(raw, name)
        return (
            Condition(created, Op.LT, (_day_after(moment),))
            if whole_day
            else Condition(created, Op.LTE, (moment,))
        )
    field = BY_ALIAS[name]
    if field.admin_only and not sender.is_admin:
        raise ForbiddenFilter(f"Only an admin key may filter on {name}.")
    return Condition(field, Op.EQ, (parse_value(field, raw, name),))
