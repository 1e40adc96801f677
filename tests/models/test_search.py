"""The search compiler: every Mambu filter element on every field type it applies to, run as SQL
on each database, with "now" fixed; isolation between senders; retention on the read side."""

from datetime import UTC, datetime

import pytest

from models.search import All, search_messages, search_notifications
from models.search_syntax import ELEMENTS, mambu_filter, notifybc_where
from tests.factories import make_sender, stored_message

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday; retention reaches back to 11-11
IDNP = "2001234567891"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def history(db):
    """Five messages of one sender, one of another; returned by letter, with the senders. The
    first may read the contact registry, so its IDNP messages' destinations are searchable."""
    acme = make_sender("acme", permissions=["contacts:read"]).sender
    globex = make_sender("globex").sender
    rows = {
        "a": stored_message(
            acme,
            created_at=at("2026-11-18T09:00"),
            sent_at=at("2026-11-18T09:01"),
            recipient_key=IDNP,
            attempts=1,
            event="LOAN_CREATED",
            service_name="loans",
            target_id="L-1",
            target_type="loan",
            reference="r-1",
        ),
        "b": stored_message(
            acme,
            channel="sms",
            destination="+37369000001",
            state="failed",
            failure_reason="RETRIES_EXHAUSTED",
            created_at=at("2026-11-16T10:00"),
            recipient_key=IDNP,
            attempts=5,
            event="LOAN_REPAID",
            service_name="loans",
            reference="r-2",
        ),
        "c": stored_message(
            acme,
            channel="webhook",
            destination="https://hooks.example.md/x",
            state="failed",
            failure_reason="REJECTED_BY_PROVIDER",
            created_at=at("2026-11-03T08:00"),
            attempts=3,
            event="LOAN_CREATED",
        ),
        "d": stored_message(
            acme,
            channel="inapp",
            destination="user-7",
            state="unread",
            created_at=at("2026-02-10T00:00"),
            sent_at=at("2026-02-10T00:00:05"),
            recipient_key="user-7",
            attempts=1,
            event="PERMIT_READY",
            service_name="permits",
        ),
        "e": stored_message(
            acme,
            channel="webpush",
            destination='{"endpoint": "https://push.example.md/1"}',
            state="queued",
            created_at=at("2025-12-31T23:59"),
        ),
        "z": stored_message(
            globex, state="failed", created_at=at("2026-11-18T10:00"), event="LOAN_CREATED"
        ),
    }
    return rows, acme, globex


def found(history, sender, *constraints) -> set[str]:
    rows, *_ = history
    names = {row.id: name for name, row in rows.items()}
    loaded = [
        dict(zip(("filter_selection", "filter_element", "value", "second_value"), c, strict=False))
        for c in constraints
    ]
    for item in loaded:
        if isinstance(item.get("value"), list):
            item["values"] = item.pop("value")
    node = mambu_filter(loaded, sender, now=NOW)
    return {names[m.id] for m in search_messages(sender, node, now=NOW)}


ALL = {"a", "b", "c", "d", "e"}
#: (selection, element, value, secondValue) → the messages of acme found.
CASES = [
    ("ENCODED_KEY", "EQUALS", "$a", None, {"a"}),
    ("ENCODED_KEY", "IN", ["$a", "$c"], None, {"a", "c"}),
    ("ENCODED_KEY", "EMPTY", None, None, set()),
    ("ENCODED_KEY", "NOT_EMPTY", None, None, ALL),
    ("NOTIFICATION_KEY", "EQUALS", "#b", None, {"b"}),
    ("NOTIFICATION_KEY", "IN", ["#b", "#d"], None, {"b", "d"}),
    ("RECIPIENT_USER_KEY", "EQUALS", IDNP, None, {"a", "b"}),
    ("RECIPIENT_USER_KEY", "STARTS_WITH", "user", None, {"d"}),
    ("RECIPIENT_USER_KEY", "EMPTY", None, None, {"c", "e"}),
    ("RECIPIENT_USER_KEY", "NOT_EMPTY", None, None, {"a", "b", "d"}),
    ("DESTINATION", "EQUALS", "ion@example.md", None, {"a"}),
    ("DESTINATION", "STARTS_WITH", "ION@", None, {"a"}),
    ("DESTINATION", "STARTS_WITH", "https://hooks", None, set()),  # past retention: gone
    # c and d became final past retention: gone; e is still queued, so it keeps its address.
    ("DESTINATION", "EMPTY", None, None, {"c", "d"}),
    ("DESTINATION", "NOT_EMPTY", None, None, {"a", "b", "e"}),
    ("CREATION_DATE", "ON", "2026-11-18", None, {"a"}),
    ("CREATION_DATE", "ON", "2026-11-18T23:30:00+02:00", None, {"a"}),
    ("CREATION_DATE", "AFTER", "2026-11-15", None, {"a", "b"}),
    ("CREATION_DATE", "AFTER", "2026-11-16", None, {"a"}),
    ("CREATION_DATE", "AFTER", "2026-11-18T08:59:59Z", None, {"a"}),
    ("CREATION_DATE", "BEFORE", "2026-01-01", None, {"e"}),
    ("CREATION_DATE", "BEFORE", "2026-11-18T11:00:00+02:00", None, {"b", "c", "d", "e"}),
    ("CREATION_DATE", "BETWEEN", "2026-11-03", "2026-11-16", {"b", "c"}),
    ("CREATION_DATE", "BETWEEN", "2026-11-03T08:00:00", "2026-11-16T09:59:00", {"c"}),
    ("CREATION_DATE", "TODAY", None, None, {"a"}),
    ("CREATION_DATE", "THIS_WEEK", None, None, {"a", "b"}),
    ("CREATION_DATE", "THIS_MONTH", None, None, {"a", "b", "c"}),
    ("CREATION_DATE", "THIS_YEAR", None, None, {"a", "b", "c", "d"}),
    ("CREATION_DATE", "LAST_DAYS", 3, None, {"a", "b"}),
    ("CREATION_DATE", "LAST_DAYS", "1", None, {"a"}),
    ("CREATION_DATE", "EMPTY", None, None, set()),
    ("CREATION_DATE", "NOT_EMPTY", None, None, ALL),
    ("SENT_DATE", "ON", "2026-11-18", None, {"a"}),
    ("SENT_DATE", "TODAY", None, None, {"a"}),
    ("SENT_DATE", "THIS_YEAR", None, None, {"a", "d"}),
    ("SENT_DATE", "EMPTY", None, None, {"b", "c", "e"}),
    ("SENT_DATE", "NOT_EMPTY", None, None, {"a", "d"}),
    ("STATE", "EQUALS", "FAILED", None, {"b", "c"}),
    ("STATE", "IN", ["sent", "Unread"], None, {"a", "d"}),
    ("STATE", "EMPTY", None, None, set()),
    ("STATE", "NOT_EMPTY", None, None, ALL),
    ("FAILURE_REASON", "EQUALS", "retries_exhausted", None, {"b"}),
    ("FAILURE_REASON", "IN", ["REJECTED_BY_PROVIDER", "DEAD_ADDRESS"], None, {"c"}),
    ("FAILURE_REASON", "EMPTY", None, None, {"a", "d", "e"}),
    ("FAILURE_REASON", "NOT_EMPTY", None, None, {"b", "c"}),
    ("TYPE", "EQUALS", "WEB_HOOK", None, {"c"}),
    ("TYPE", "EQUALS", "Email", None, {"a"}),
    ("TYPE", "IN", ["IN_APP", "web_push"], None, {"d", "e"}),
    ("ATTEMPTS", "EQUALS", 1, None, {"a", "d"}),
    ("ATTEMPTS", "MORE_THAN", 2, None, {"b", "c"}),
    ("ATTEMPTS", "LESS_THAN", 1, None, {"e"}),
    ("ATTEMPTS", "BETWEEN", 1, 3, {"a", "c", "d"}),
    ("ATTEMPTS", "EMPTY", None, None, set()),
    ("ATTEMPTS", "NOT_EMPTY", None, None, ALL),
    ("EVENT", "EQUALS", "LOAN_CREATED", None, {"a", "c"}),
    ("EVENT", "STARTS_WITH", "loan_", None, {"a", "b", "c"}),
    ("EVENT", "EMPTY", None, None, {"e"}),
    ("EVENT", "NOT_EMPTY", None, None, {"a", "b", "c", "d"}),
    ("SERVICE_NAME", "EQUALS", "loans", None, {"a", "b"}),
    ("SERVICE_NAME", "EMPTY", None, None, {"c", "e"}),
    ("TARGET_ID", "EQUALS", "L-1", None, {"a"}),
    ("TARGET_TYPE", "STARTS_WITH", "lo", None, {"a"}),
    ("REFERENCE", "EQUALS", "r-2", None, {"b"}),
    ("REFERENCE", "EMPTY", None, None, {"c", "d", "e"}),
]


def resolve(value, rows):
    if isinstance(value, list):
        return [resolve(item, rows) for item in value]
    if isinstance(value, str) and value[:1] in ("$", "#"):
        row = rows[value[1:]]
        return str(row.id if value[0] == "$" else row.notification_id)
    return value


@pytest.mark.parametrize(("selection", "element", "value", "second", "expected"), CASES)
def test_each_element_on_each_type(history, selection, element, value, second, expected):
    rows, acme, _ = history
    value = resolve(value, rows)
    constraint = (selection, element) + ((value,) if value is not None else ())
    if second is not None:
        constraint += (second,)
    assert found(history, acme, constraint) == expected


def test_the_cases_cover_every_element_on_every_type_it_applies_to():
    from models.search import FIELDS

    covered = {(FIELDS[selection].type, element) for selection, element, *_ in CASES}
    wanted = {(kind, element) for element, kinds in ELEMENTS.items() for kind in kinds}
    assert wanted <= covered


def test_constraints_are_anded(history):
    _, acme, _ = history
    assert found(history, acme, ("STATE", "EQUALS", "failed"), ("CREATION_DATE", "THIS_WEEK")) == {
        "b"
    }


def test_a_sender_sees_only_its_own_an_admin_all(history):
    rows, acme, globex = history
    admin = make_sender("ops", admin=True).sender
    event = ("EVENT", "EQUALS", "LOAN_CREATED")
    assert found(history, acme, event) == {"a", "c"}
    assert found(history, globex, event) == {"z"}
    assert found(history, admin, event) == {"a", "c", "z"}
    assert found(history, admin, ("SENDER_KEY", "IN", [str(globex.id)])) == {"z"}
    assert found(history, admin, ("SENDER_KEY", "EQUALS", str(acme.id))) == ALL


def test_notifybc_where_compiles_through_the_same_builder(history):
    rows, acme, _ = history
    where = {
        "or": [
            {"and": [{"state": "failed"}, {"channel": {"inq": ["SMS", "webhook"]}}]},
            {"event": {"like": "permit%"}},
        ],
        "createdAt": {"gte": "2026-01-01"},
    }
    node = notifybc_where(where, acme)
    names = {row.id: name for name, row in rows.items()}
    assert {names[m.id] for m in search_messages(acme, node, now=NOW)} == {"b", "c", "d"}
    notifications = {n.id for n in search_notifications(acme, node, now=NOW)}
    assert notifications == {rows[name].notification_id for name in ("b", "c", "d")}


def test_sort_orders_by_the_field_then_id(history):
    from models.search import FIELDS, Order

    _, acme, _ = history
    by_attempts = search_messages(acme, All(), Order(FIELDS["ATTEMPTS"], descending=False))
    assert [m.attempts for m in by_attempts] == [0, 1, 1, 3, 5]
