"""The promises, checked with SQL against the database after every step of the invariant test.
Each check raises AssertionError naming the rows that break it. Rows are read into lists before
any assertion: a failure kept by hypothesis must not keep a SQLite statement (and its read
snapshot) open, or every later example would read stale rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes, policy

from models.contact import Contact, ContactChannel, Subscription
from models.housekeeping import REDACTED
from models.message import Attempt, Message
from models.notification import Notification
from models.states import CLAIMABLE, FINAL, FailureReason, MessageState
from settings import settings
from tests.invariants.mail import AddressScriptedMailServer, herald_id
from tests.invariants.model import Model

KNOWN_STATES = set(MessageState)


def _messages():
    return list(
        Message.select(
            Message.id,
            Message.notification,
            Message.channel,
            Message.state,
            Message.failure_reason,
            Message.due_at,
            Message.attempts,
            Message.recipient_key,
            Message.fallback_rank,
        ).order_by(Message.id)
    )


def accepted_means_explained(model: Model) -> None:
    """Promise 1: every message is final, or waits with a due time; a failure has a reason;
    once replay has run, nothing waits longer than replay allows; after a step has settled,
    only a killed worker's messages are left ``sending``."""
    replayed, released = model.replayed_at, model.released_at
    stale = replayed and replayed - timedelta(seconds=settings.REPLAY_AFTER_SECONDS)
    for m in _messages():
        where = f"message {m.id} ({m.channel}) is {m.state}"
        assert m.state in KNOWN_STATES, f"{where}: not a message state"
        if m.state == MessageState.FAILED:
            assert m.failure_reason, f"{where} without a failure reason"
        if m.state in FINAL:
            continue
        assert m.due_at is not None, f"{where} with no due time"
        if m.state in CLAIMABLE and stale:
            assert m.due_at >= stale, f"{where} since {m.due_at}; replay ran at {replayed}"
        if m.state == MessageState.SENDING:
            assert str(m.id) in model.orphans, f"{where} after its worker finished"
            if replayed:
                assert m.due_at >= replayed, (
                    f"{where}, lease over at {m.due_at}, replayed at {replayed}"
                )
        if m.state == MessageState.SCHEDULED and released:
            assert m.due_at > released, f"{where} for {m.due_at}; scheduled sends ran at {released}"


def fallback_chains_move(model: Model) -> None:
    """Promise 1 for fallback chains: a ``held`` message waits only for a link before it
    that is still under way."""
    chains: dict[tuple, list] = {}
    for m in _messages():
        if m.fallback_rank is not None:
            chains.setdefault((m.notification_id, m.recipient_key), []).append(m)
    for links in chains.values():
        for held in (m for m in links if m.state == MessageState.HELD):
            before = [m for m in links if m.fallback_rank < held.fallback_rank]
            assert any(m.state not in FINAL and m.state != MessageState.HELD for m in before), (
                f"message {held.id} is held, but every link before it is over: "
                f"{[(m.fallback_rank, m.state) for m in before]}"
            )


def fanouts_finish(model: Model) -> None:
    """Promise 1: no fan-out is left pending for longer than replay allows, once it has run."""
    if model.replayed_at is None:
        return
    stale = model.replayed_at - timedelta(seconds=settings.REPLAY_AFTER_SECONDS)
    stalled = list(
        Notification.select(Notification.id, Notification.fanout_updated_at).where(
            (Notification.fanout_state == "pending") & (Notification.fanout_updated_at < stale)
        )
    )
    assert not stalled, f"fan-outs pending since before {stale}: {[str(n.id) for n in stalled]}"


def render_errors_are_permanent(model: Model) -> None:
    """An email the template cannot render fails at once with TEMPLATE_ERROR: it is neither
    retried nor given another reason."""
    if not model.unrenderable:
        return
    messages = list(
        Message.select(Message.id, Message.state, Message.failure_reason).where(
            Message.notification.in_(list(model.unrenderable)) & (Message.channel == "email")
        )
    )
    for m in messages:
        assert m.state not in (MessageState.RETRYING, MessageState.SENT), (
            f"message {m.id} cannot render but is {m.state}"
        )
        if m.state == MessageState.FAILED:
            assert m.failure_reason in (FailureReason.TEMPLATE_ERROR, FailureReason.EXPIRED), (
                f"message {m.id} cannot render but failed with {m.failure_reason}"
            )


def sent_at_most_once_per_attempt(smtp: AddressScriptedMailServer) -> None:
    """Promise 2: the SMTP server accepted each Herald message at most once per attempt, and
    every email ``sent`` is there."""
    deliveries = smtp.deliveries()
    emails = Message.select(Message.id, Message.state, Message.attempts).where(
        Message.channel == "email"
    )
    attempts = {str(m.id): m for m in emails}
    for message_id, count in deliveries.items():
        assert message_id in attempts, f"the server got {message_id}, which Herald never had"
        made = attempts[message_id].attempts
        assert count <= made, (
            f"message {message_id} ({attempts[message_id].state}) arrived {count} times in "
            f"{made} attempts"
        )
    for message_id, m in attempts.items():
        if m.state == MessageState.SENT:
            assert deliveries[message_id] >= 1, f"message {message_id} is sent but never arrived"


def emails_carry_their_body(model: Model, smtp: AddressScriptedMailServer) -> None:
    """Each email carries the body its notification was accepted with (a scheduled send
    delivered after retention ran too); checks the mails received since the last call."""
    mails = list(smtp.received)[model.mails_checked :]
    for mail in mails:
        message_id = herald_id(mail.raw)
        row = Message.get_or_none(Message.id == message_id)
        expected = row and model.bodies.get(str(row.notification_id))
        if expected is None:
            continue
        body = message_from_bytes(mail.raw, policy=policy.default).get_body(("plain",))
        text = body.get_content().replace("\r\n", "\n")
        assert text in (expected, expected + "\n"), (
            f"message {message_id} arrived with body {text!r}, expected {expected!r}"
        )
    model.mails_checked += len(mails)


#: The newest notifications (ids only) as a sender lists them: every step's new ones are there.
LATEST = '/v1/notifications?filter={"fields":{"id":true},"limit":50}'


def nobody_reads_what_is_not_theirs(call: Callable, senders: dict) -> None:
    """Promise 3: a sender's searches and listings hold only its own messages and
    notifications, and another sender's latest notification and message are a 404 to it.
    ``call(method, path, who, **kwargs)`` makes an API call as sender ``who``."""
    for who, sender in senders.items():
        sender_id = sender.sender.id
        own = Message.select(Message.id).where(Message.sender == sender_id)
        mine = {str(m.id) for m in own}
        found = call("post", "/v1/messages/search?pageSize=50", who, json={}).get_json()
        assert {m["id"] for m in found} <= mine, f"{who} found another sender's messages"
        theirs = Notification.select(Notification.id).where(Notification.sender != sender_id)
        listed = call("get", LATEST, who).get_json()
        others = {n["id"] for n in listed} & {str(n.id) for n in theirs}
        assert not others, f"{who} listed another sender's notifications {others}"
        latest = theirs.order_by(Notification.id.desc()).first()
        if latest is not None:
            seen = call("get", f"/v1/notifications/{latest.id}", who).status_code
            assert seen == 404, f"{who} read another sender's notification: {seen}"
        message = (
            Message.select(Message.id)
            .where(Message.sender != sender_id)
            .order_by(Message.id.desc())
            .first()
        )
        if message is not None:
            seen = call("get", f"/v1/messages/{message.id}", who).status_code
            assert seen == 404, f"{who} read another sender's message: {seen}"


def writes_keep_what_they_do_not_mention(model: Model) -> None:
    """Promise 4: each contact is as the imports (and subscriptions) so far made it."""
    rows = {c.idnp: c for c in Contact.select()}
    assert set(rows) == set(model.contacts), (
        f"contacts {sorted(rows)} in the registry, expected {sorted(model.contacts)}"
    )
    channels: dict[int, set] = {}
    for channel in ContactChannel.select(
        ContactChannel.contact, ContactChannel.type, ContactChannel.address
    ):
        channels.setdefault(channel.contact_id, set()).add((channel.type, channel.address))
    subscriptions: dict[int, set] = {}
    for subscription in Subscription.select(Subscription.contact, Subscription.service_name):
        subscriptions.setdefault(subscription.contact_id, set()).add(subscription.service_name)
    for number, expected in model.contacts.items():
        row = rows[number]
        actual = {
            "name": row.name,
            "preferred_language": row.preferred_language,
            "attributes": row.attributes or {},
            "quiet_hours": row.quiet_hours,
            "channels": channels.get(row.id, set()),
            "subscriptions": subscriptions.get(row.id, set()),
        }
        wanted = {name: getattr(expected, name) for name in actual}
        assert actual == wanted, f"contact {number} is {actual}, expected {wanted}"


def retention_leaves_nothing(model: Model) -> None:
    """Promise 8: a purged notification keeps no content, its messages no destination,
    subject, body, attributes or provider replies; retention purged no message that was not
    final; and nothing is attempted again after its purge."""
    assert not model.purged_unfinished, (
        f"retention purged messages that were not final: {sorted(model.purged_unfinished)}"
    )
    purged = {n.id: n for n in Notification.select().where(Notification.purged_at.is_null(False))}
    for n in purged.values():
        assert not n.content and n.attributes is None and n.recipients is None, (
            f"purged notification {n.id} keeps {n.content!r}, {n.attributes!r}, {n.recipients!r}"
        )
    if not purged:
        return
    for m in list(Message.select().where(Message.notification.in_(list(purged)))):
        kept = {
            name: value
            for name, value in (
                ("destination", None if m.destination == REDACTED else m.destination),
                ("subject", m.subject),
                ("body", m.body),
                ("attributes", m.attributes),
                ("recipient_key", m.recipient_key),
                ("last_error", m.last_error),
                ("details", m.details),
            )
            if value is not None
        }
        assert not kept, f"message {m.id} of a purged notification keeps {kept}"
    late = list(
        Attempt.select(Attempt.message, Attempt.started_at, Message.notification)
        .join(Message)
        .where(Message.notification.in_(list(purged)))
    )
    for attempt in late:
        purged_at = purged[attempt.message.notification_id].purged_at
        assert attempt.started_at <= purged_at, (
            f"message {attempt.message_id} was attempted at {attempt.started_at}, "
            f"after its notification was purged at {purged_at}"
        )
