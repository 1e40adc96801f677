"""Promise 8 end to end: after retention, nothing of the person is left.

A person's data goes down every path Herald keeps it on: an IDNP fan-out over email and SMS
with template attributes naming them, an SMTP refusal quoting their address, a letter PDF, an
in-app broadcast and message they read and act on, Idempotency-Key requests and a reminder.
Everything reaches a final state through a real worker; then the scheduler's purge and key
expiry run past retention, and neither the rows of any table nor (on SQLite) the bytes of the
database's files nor the document store hold their IDNP, email, phone, name or address.

The contact registry (contact, contact_channel, subscription) is the person's current record,
not history: retention leaves it (the second test checks), and the first test excludes it
explicitly: its tables are left out of the rows read, and its rows are deleted before the purge
so that the file's bytes can be read whole (SQLite zeroes their cells like the purged ones).
No checkpoint is made by the test: the jobs' own leaves the write-ahead log empty.
"""

import json
import os
from datetime import timedelta

import pytest

from channels import documents
from models.action import NotificationAction
from models.base import utcnow
from models.contact import Contact, upsert_contacts
from models.db import is_sqlite
from models.idempotency import IdempotencyRecord
from models.inbox import BroadcastState, Reader, inbox_item, set_item_state
from models.message import Attempt, Message
from models.notification import Notification
from models.reminder import Reminder
from models.states import FINAL, MessageState
from scheduler.jobs import forget_expired, purge, send_scheduled
from settings import settings
from tests.factories import idnp, stored_message
from tests.inbox_support import broadcast_body, inapp_body, inbox, send_inapp, token_for
from tests.support import running_worker, wait_until

RETENTION = timedelta(days=7)
IDNP = idnp(7_310_529)
NAME = "Zinovia Cazacioc"
EMAIL = "zinovia.cazacioc@example.md"
PHONE = "+37369555123"
ADDRESS = [NAME, "str. Zmeului 77, ap. 13", "MD-2068 Ciorescu", "mun. Chișinău"]
#: What must not be found after retention (the phone also without its +, and nationally).
PERSON = [IDNP, EMAIL, PHONE[1:], "69555123", "Zinovia", "Cazacioc", *ADDRESS[1:]]
#: Each as stored as text, and as a JSON document stores it (non-ASCII as \u escapes).
FORMS = sorted({form for needle in PERSON for form in (needle, json.dumps(needle)[1:-1])})
#: The tables of the contact registry, which retention does not purge.
REGISTRY = {"contact", "contact_channel", "subscription"}
#: Where history keeps the person before the purge: each path must have been taken.
HISTORY = {
    "notification",
    "message",
    "attempt",
    "idempotency_record",
    "reminder",
    "broadcast_state",
    "notification_action",
}

TEMPLATE = {
    "code": "home-visit",
    "name": "Home visit",
    "defaultLanguage": "ro",
    "attributes": [{"name": "fullName", "required": True}, {"name": "street", "required": True}],
    "contents": [
        {
            "channel": "email",
            "language": "ro",
            "subject": "Vizită la domiciliu: {{ fullName }}",
            "body": "Stimată {{ fullName }}, venim pe {{ street }}.",
        },
        {"channel": "default", "language": "ro", "body": "{{ fullName }}: vizită, {{ street }}."},
    ],
}


@pytest.fixture(autouse=True)
def _seven_days(monkeypatch):
    monkeypatch.setattr(settings, "MESSAGE_RETENTION_DAYS", RETENTION.days)


def post(client, headers: dict, path: str, body: dict, status: int = 202, key=None) -> dict:
    headers = headers | ({"Idempotency-Key": key} if key else {})
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def visit(**extra) -> dict:
    """The templated notification to the person's IDNP, attributes naming them."""
    recipient = {"type": "idnp", "value": IDNP, "attributes": {"fullName": NAME}}
    return {
        "template": "home-visit",
        "attributes": {"street": ADDRESS[1]},
        "recipients": [recipient],
        **extra,
    }


def give_the_person_a_history(client, sender, smtp, queues) -> None:
    """Everything of the list above, each path through the API and a real worker, until every
    message is final."""
    upsert_contacts(
        [
            {
                "idnp": IDNP,
                "name": NAME,
                "preferred_language": "ro",
                "channels": [
                    {"type": "email", "address": EMAIL, "priority": 10},
                    {"type": "phone", "address": PHONE, "priority": 20},
                ],
            }
        ]
    )
    smtp.rcpt_replies[EMAIL] = f"550 5.1.1 <{EMAIL}>: Recipient address rejected: unknown user"
    post(client, sender.headers, "/v1/templates", TEMPLATE, 201)
    at = (utcnow() + timedelta(minutes=1)).isoformat()
    reminder = post(client, sender.headers, "/v1/reminders", visit(at=[at]), 201)
    with running_worker(queues):
        post(client, sender.headers, "/v1/notifications", visit(), key=f"visit-{IDNP}")
        letter = {"subject": f"Dosarul {IDNP}", "body": f"Stimată doamnă {NAME}, vă scriem."}
        recipients = [{"type": "address", "value": ADDRESS}]
        body = {"recipients": recipients, "message": letter}
        post(client, sender.headers, "/v1/notifications", body, key=f"letter-{IDNP}")
        broadcast = post(client, sender.headers, "/v1/notifications", broadcast_body())
        send_inapp(client, sender, inapp_body(IDNP))
        assert send_scheduled(utcnow() + timedelta(minutes=2))["fired"] == 1
        wait_until(everything_final, timeout=30)
        act_in_the_inbox(client, sender, broadcast["id"])
    assert Reminder.get_by_id(reminder["id"]).state == "done"


def everything_final() -> bool:
    """Every fan-out done (email, SMS and in-app for each IDNP notification) and every
    message final: eight of them, with the letter and the direct in-app one."""
    if Notification.select().where(Notification.fanout_state == "pending").exists():
        return False
    states = [message.state for message in Message.select(Message.state)]
    return len(states) == 8 and all(state in FINAL for state in states)


def act_in_the_inbox(client, sender, broadcast_id: str) -> None:
    """The person reads every inbox item (three in-app messages, the broadcast) and acts on
    two; the sender records an action by an officer naming them."""
    user = token_for(client, sender, IDNP)
    items = inbox(client, user)
    assert len(items) == 4
    for item in items:
        read = client.patch(f"/v1/inbox/{item['id']}", json={"state": "read"}, headers=user)
        assert read.status_code == 200, read.get_json()
    acted = [item for item in items if item["broadcast"]] + [items[-1]]
    for item in acted:
        action = {"actionType": "Approved", "actionNote": f"Confirmat: {NAME}, {PHONE}"}
        post(client, user, f"/v1/inbox/{item['id']}/actions", action, status=201)
    officer = {"actionType": "Validate", "performedBy": NAME, "actionNote": EMAIL}
    post(client, sender.headers, f"/v1/notifications/{broadcast_id}/actions", officer, 201)


def rows_holding_the_person(db) -> dict[str, list[str]]:
    """Per table (the registry's excepted), what of the person its rows hold, every column of
    every row read back as text."""
    found: dict[str, list[str]] = {}
    for table in db.get_tables():
        if table in REGISTRY:
            continue
        for row in db.execute_sql(f'SELECT * FROM "{table}"').fetchall():
            text = " ".join(str(value) for value in row)
            hits = [form for form in FORMS if form in text]
            if hits:
                found.setdefault(table, []).extend(hits)
    return found


def bytes_holding_the_person(paths: list[str]) -> dict[str, list[str]]:
    """Per file, what of the person its bytes hold."""
    found = {}
    for path in paths:
        with open(path, "rb") as file:
            data = file.read()
        hits = [form for form in FORMS if form.encode() in data]
        if hits:
            found[path] = hits
    return found


def database_files(db) -> list[str]:
    """The SQLite database file and its write-ahead log and shared-memory index."""
    return [
        db.database + suffix
        for suffix in ("", "-wal", "-shm")
        if os.path.exists(db.database + suffix)
    ]


def stored_documents() -> list[str]:
    root = settings.DOCUMENT_STORE_DIR
    return [os.path.join(top, name) for top, _, names in os.walk(root) for name in names]


def test_after_retention_nothing_of_the_person_is_left(client, sender, smtp, twilio, queues, db):
    give_the_person_a_history(client, sender, smtp, queues)
    assert set(rows_holding_the_person(db)) >= HISTORY
    assert len(stored_documents()) == 2  # the letter's PDF and its sidecar
    if is_sqlite():
        assert bytes_holding_the_person(database_files(db))
    Contact.delete().execute()  # the registry and its channels (cascade): not history

    later = utcnow() + RETENTION + timedelta(days=1)
    assert purge(later) == {"notifications": 5, "messages": 8}
    assert forget_expired(later) == {"idempotency_keys": 0, "reminder_requests": 1}

    assert rows_holding_the_person(db) == {}
    assert stored_documents() == []
    if is_sqlite():  # the jobs checkpointed the log into the file and truncated it
        assert bytes_holding_the_person(database_files(db)) == {}


def test_what_stays_after_retention_is_the_audit_without_the_person(
    client, sender, smtp, twilio, queues, db
):
    give_the_person_a_history(client, sender, smtp, queues)
    attempts = sorted(attempt.outcome for attempt in Attempt.select())
    states = sorted(message.state for message in Message.select())

    later = utcnow() + RETENTION + timedelta(days=1)
    purge(later)
    forget_expired(later)

    assert sorted(message.state for message in Message.select()) == states
    assert {message.contact_id for message in Message.select()} == {None}
    assert sorted(attempt.outcome for attempt in Attempt.select()) == attempts
    assert {(a.error, a.provider_id) for a in Attempt.select()} == {(None, None)}
    actions = list(NotificationAction.select().order_by(NotificationAction.id))
    assert [a.action_type for a in actions] == ["Approved", "Approved", "Validate"]
    assert {(a.performed_by, a.action_note) for a in actions} == {(None, None)}
    assert [a.recipient_key for a in actions] == ["", "", None]  # a user's, a sender's
    assert BroadcastState.select().count() == IdempotencyRecord.select().count() == 0
    [reminder] = Reminder.select()
    assert (reminder.state, reminder.fired, reminder.request) == ("done", 1, {})
    assert Contact.get(Contact.idnp == IDNP).name == NAME  # the registry is not history
    assert inbox(client, token_for(client, sender, IDNP)) == []
    assert Message.select().where(Message.state == MessageState.FAILED).count() == 2


def test_a_reminder_keeps_its_request_while_active_and_loses_it_once_ended(client, sender):
    soon = (utcnow() + timedelta(hours=1)).isoformat()
    message = {"subject": "Vizită", "body": NAME}
    body = {"recipients": [{"type": "idnp", "value": IDNP}], "message": message}
    active = post(client, sender.headers, "/v1/reminders", body | {"at": [soon]}, 201)
    cancelled = post(client, sender.headers, "/v1/reminders", body | {"at": [soon]}, 201)
    url = f"/v1/reminders/{cancelled['id']}"
    assert client.delete(url, headers=sender.headers).status_code == 204

    assert forget_expired(utcnow() + RETENTION - timedelta(minutes=1))["reminder_requests"] == 0
    assert forget_expired(utcnow() + RETENTION + timedelta(days=1))["reminder_requests"] == 1

    kept = client.get(f"/v1/reminders/{active['id']}", headers=sender.headers).get_json()
    assert (kept["state"], kept["request"]["recipients"]) == ("active", body["recipients"])
    ended = client.get(url, headers=sender.headers).get_json()
    assert (ended["state"], ended["request"]) == ("cancelled", {})


def test_a_purged_broadcast_leaves_the_inbox_and_takes_no_reader_or_action(
    client, sender, queues, db
):
    broadcast = post(client, sender.headers, "/v1/notifications", broadcast_body())
    user = token_for(client, sender, IDNP)
    [item] = inbox(client, user)
    found = inbox_item(Reader(IDNP), item["id"])

    assert purge(utcnow() + RETENTION + timedelta(days=1))["notifications"] == 1

    assert inbox(client, user) == []
    set_item_state(Reader(IDNP), found, MessageState.READ)  # read as the purge ran
    assert BroadcastState.select().count() == 0
    officer = {"actionType": "Validate", "performedBy": NAME}
    url = f"/v1/notifications/{broadcast['id']}/actions"
    assert client.post(url, json=officer, headers=sender.headers).status_code == 409
    assert NotificationAction.select().count() == 0


def test_a_document_that_cannot_be_removed_keeps_its_rows_for_the_next_purge(sender):
    document_id = documents.put(b"%PDF-1.7 " + NAME.encode(), "application/pdf", "letter.pdf")
    long_ago = utcnow() - RETENTION * 2
    letter = stored_message(
        sender.sender,
        channel="letter",
        destination="\n".join(ADDRESS),
        details={"documentId": document_id, "pages": 1},
        created_at=long_ago,
    )
    path = os.path.join(settings.DOCUMENT_STORE_DIR, document_id[:2], document_id[2:4], document_id)
    os.remove(path)
    os.mkdir(path)  # what a file cannot be removed as, even by root

    with pytest.raises(OSError):
        purge(utcnow())
    assert Message.get_by_id(letter.id).details["documentId"] == document_id
    assert Notification.get_by_id(letter.notification_id).purged_at is None

    os.rmdir(path)
    assert purge(utcnow()) == {"notifications": 1, "messages": 1}
    assert Message.get_by_id(letter.id).details is None
    assert stored_documents() == []
