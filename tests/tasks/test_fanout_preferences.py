"""Opt-outs where messages are made: fan-out (IDNP recipients, broadcasts, the cabinet copy)
and direct recipients; the fallback chain skips an opted-out channel; ``critical`` bypasses
them for a sender holding send_critical, and the history says so."""

import pytest

from models.contact import ContactChannel, Subscription
from models.message import Message
from models.preference import ADDRESS, address_subject, opt_out, set_preferences
from models.states import MessageState
from tests.factories import make_sender
from tests.inbox_support import inbox, token_for
from tests.support import wait_until
from tests.tasks.test_fanout import fanned_out, messages_of, person, send

FINAL = ("sent", "failed", "unread")


def settled(notification_id):
    def check():
        messages = messages_of(notification_id).values()
        return messages and all(Message.get_by_id(m.id).state in FINAL for m in messages)

    return check


def states(notification_id) -> dict:
    return {
        (key, channel, destination): (m.state, m.failure_reason)
        for (key, channel, destination), m in messages_of(notification_id).items()
    }


def to(*people):
    return [{"type": "idnp", "value": someone} for someone in people]


def test_a_channel_opted_out_everywhere_is_unsubscribed_never_sent(
    client, sender, smtp, telegram, worker
):
    ion = person(1, ("email", "ion@example.md"), ("telegram", "111"))
    ana = person(2, ("email", "ana@example.md"))
    set_preferences(ion, {"channels": {"email": False}})

    posted = send(client, sender, recipients=to(ion, ana), serviceName="permits")

    wait_until(fanned_out(posted["id"]))
    wait_until(settled(posted["id"]))
    assert states(posted["id"]) == {
        (ion, "email", "ion@example.md"): ("failed", "UNSUBSCRIBED"),
        (ion, "telegram", "111"): ("sent", None),
        (ion, "inapp", ion): ("unread", None),
        (ana, "email", "ana@example.md"): ("sent", None),
        (ana, "inapp", ana): ("unread", None),
    }
    assert [mail.rcpt_tos for mail in smtp.received] == [["ana@example.md"]]
    constraint = {"filterSelection": "FAILURE_REASON", "filterElement": "EQUALS"}
    found = client.post(
        "/v1/messages/search",
        json={"filterConstraints": [{**constraint, "value": "UNSUBSCRIBED"}]},
        headers=sender.headers,
    )
    assert found.status_code == 200, found.get_json()
    assert [m["destination"] for m in found.get_json()] == ["i***@example.md"]  # searchable


def test_a_channel_opted_out_for_one_service_still_serves_the_others(client, sender, smtp, worker):
    ion = person(3, ("email", "ion@example.md"))
    set_preferences(ion, {"services": {"permits": {"email": False}}})

    permits = send(client, sender, recipients=to(ion), serviceName="permits", channels=["email"])
    taxes = send(client, sender, recipients=to(ion), serviceName="taxes", channels=["email"])
    unnamed = send(client, sender, recipients=to(ion), channels=["email"])

    for posted in (permits, taxes, unnamed):
        wait_until(settled(posted["id"]))
    assert states(permits["id"]) == {(ion, "email", "ion@example.md"): ("failed", "UNSUBSCRIBED")}
    assert states(taxes["id"]) == {(ion, "email", "ion@example.md"): ("sent", None)}
    assert states(unnamed["id"]) == {(ion, "email", "ion@example.md"): ("sent", None)}
    assert len(smtp.received) == 2


def test_the_cabinet_copy_follows_an_inapp_opt_out(client, sender, smtp, worker):
    ion = person(4, ("email", "ion@example.md"))
    ana = person(5, ("email", "ana@example.md"))
    set_preferences(ion, {"channels": {"inapp": False}})

    posted = send(client, sender, recipients=to(ion, ana))

    wait_until(settled(posted["id"]))
    assert states(posted["id"])[(ion, "inapp", ion)] == ("failed", "UNSUBSCRIBED")
    assert states(posted["id"])[(ana, "inapp", ana)] == ("unread", None)
    assert inbox(client, token_for(client, sender, ion)) == []
    assert len(inbox(client, token_for(client, sender, ana))) == 1


def test_the_fallback_chain_skips_an_opted_out_channel(client, sender, smtp, telegram, worker):
    ion = person(6, ("email", "ion@example.md", 10), ("telegram", "666", 20))
    set_preferences(ion, {"channels": {"email": False}})

    posted = send(
        client,
        sender,
        recipients=to(ion),
        channelPolicy="fallback",
        channels=["email", "telegram"],
    )

    wait_until(settled(posted["id"]))
    messages = messages_of(posted["id"])
    email, chat = messages[(ion, "email", "ion@example.md")], messages[(ion, "telegram", "666")]
    assert (email.state, email.failure_reason, email.fallback_rank) == (
        "failed",
        "UNSUBSCRIBED",
        None,
    )
    assert (Message.get_by_id(chat.id).state, chat.fallback_rank) == ("sent", 0)
    assert smtp.received == []
    assert len(telegram.delivered) == 1


def test_a_broadcast_subscriber_s_opt_out_holds(client, sender, smtp, worker):
    ion = person(7, ("email", "ion@example.md"))
    ana = person(8, ("email", "ana@example.md"))
    for address in ("ion@example.md", "ana@example.md"):
        owner = ContactChannel.get(ContactChannel.address == address).contact
        Subscription.create(contact=owner, service_name="water")
    set_preferences(ana, {"services": {"water": {"email": False}}})

    posted = send(client, sender, isBroadcast=True, serviceName="water")

    wait_until(fanned_out(posted["id"]))
    wait_until(settled(posted["id"]))
    assert states(posted["id"]) == {
        (ion, "email", "ion@example.md"): ("sent", None),
        (ana, "email", "ana@example.md"): ("failed", "UNSUBSCRIBED"),
    }


def test_direct_recipients_take_the_opt_outs_of_who_owns_the_address(client, sender, smtp, worker):
    ion = person(9, ("email", "ion@example.md"))
    ana = person(10, ("email", "ana@example.md"))
    ContactChannel.update(active=False).where(ContactChannel.address == "ana@example.md").execute()
    person(11, ("email", "shared@example.md"))
    dan = person(12, ("email", "shared@example.md"))  # two people share this address
    for someone in (ion, ana, dan):
        set_preferences(someone, {"channels": {"email": False}})
    opt_out(address_subject("email", "stranger@example.md"), "email", kind=ADDRESS)
    opt_out("u-ana", "inapp")

    direct = [
        {"type": "email", "value": address}
        for address in (
            "ion@example.md",  # a registry contact's address
            "ana@example.md",  # a registry address, switched off: its owner still opted out
            "shared@example.md",  # one of its owners opted out
            "stranger@example.md",  # outside the registry: its own unsubscribe
            "welcome@example.md",  # nobody said anything
        )
    ] + [{"type": "user", "value": "u-ana"}, {"type": "user", "value": "u-ion"}]
    response = client.post(
        "/v1/notifications",
        json={"recipients": direct, "message": {"subject": "S", "body": "B"}},
        headers=sender.headers,
    )
    assert response.status_code == 202, response.get_json()
    answered = {
        m["destination"]: (m["state"], m["failureReason"]) for m in response.get_json()["messages"]
    }
    unsubscribed = ("failed", "UNSUBSCRIBED")
    assert answered == {
        "ion@example.md": unsubscribed,
        "ana@example.md": unsubscribed,
        "shared@example.md": unsubscribed,
        "stranger@example.md": unsubscribed,
        "welcome@example.md": ("queued", None),
        "u-ana": unsubscribed,
        "u-ion": ("queued", None),
    }
    wait_until(lambda: len(smtp.received) == 1)
    wait_until(settled(response.get_json()["id"]))
    assert [mail.rcpt_tos for mail in smtp.received] == [["welcome@example.md"]]
    assert inbox(client, token_for(client, sender, "u-ana")) == []
    assert len(inbox(client, token_for(client, sender, "u-ion"))) == 1


def test_critical_needs_the_grant_and_without_it_nothing_is_stored(client, sender):
    ion = person(13, ("email", "ion@example.md"))
    body = {
        "recipients": [*to(ion), {"type": "email", "value": "x@example.md"}],
        "message": {"subject": "S", "body": "B"},
        "critical": True,
    }
    refused = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert refused.status_code == 403
    assert "send_critical" in refused.get_json()["message"]
    assert Message.select().count() == 0


@pytest.mark.parametrize("grant", ["send_critical", "admin"])
def test_critical_bypasses_opt_outs_and_the_history_says_so(client, smtp, telegram, worker, grant):
    alerts = (
        make_sender("alerts", admin=True)
        if grant == "admin"
        else make_sender("alerts", permissions=["send_critical"])
    )
    ion = person(14, ("email", "ion@example.md"), ("telegram", "141"))
    set_preferences(ion, {"channels": {"email": False, "inapp": False}})
    opt_out(address_subject("email", "out@example.md"), "email", kind=ADDRESS)

    posted = send(
        client,
        alerts,
        recipients=[*to(ion), {"type": "email", "value": "out@example.md"}],
        critical=True,
    )

    assert posted["critical"] is True
    wait_until(fanned_out(posted["id"]))
    wait_until(settled(posted["id"]))
    assert {state for state, _ in states(posted["id"]).values()} <= {"sent", "unread"}
    assert sorted(m.rcpt_tos[0] for m in smtp.received) == ["ion@example.md", "out@example.md"]
    history = client.get(f"/v1/notifications/{posted['id']}", headers=alerts.headers).get_json()
    assert history["critical"] is True
    bypassed = {(m["channel"], m["optOutBypassed"]) for m in history["messages"]}
    assert bypassed == {("email", True), ("telegram", False), ("inapp", True)}
    assert Message.get(Message.destination == "out@example.md").opt_out_bypassed is True


def test_a_notification_that_is_not_critical_says_so(client, sender, smtp):
    posted = send(client, sender, recipients=[{"type": "email", "value": "a@example.md"}])
    assert posted["critical"] is False
    assert [m["optOutBypassed"] for m in posted["messages"]] == [False]


def test_a_scheduled_direct_message_to_an_opted_out_address_fails_at_once(client, sender):
    opt_out(address_subject("email", "later@example.md"), "email", kind=ADDRESS)
    posted = send(
        client,
        sender,
        recipients=[
            {"type": "email", "value": "later@example.md"},
            {"type": "email", "value": "fine@example.md"},
        ],
        sendAt="2099-01-05T09:00:00+02:00",
    )
    by_address = {m["destination"]: m["state"] for m in posted["messages"]}
    assert by_address == {"later@example.md": "failed", "fine@example.md": MessageState.SCHEDULED}
    assert Message.get(Message.destination == "later@example.md").due_at is None


def test_a_message_the_person_opted_out_of_cannot_be_resent(client, queues):
    resender = make_sender("lender", permissions=["resend_failed"])
    opt_out(address_subject("email", "out@example.md"), "email", kind=ADDRESS)
    posted = send(client, resender, recipients=[{"type": "email", "value": "out@example.md"}])
    [message] = posted["messages"]
    assert message["failureReason"] == "UNSUBSCRIBED"

    body = {"action": "resend", "identifiers": [message["id"]]}
    response = client.post("/v1/messages", json=body, headers=resender.headers)

    assert response.status_code == 400, response.get_json()
    assert "opted out" in str(response.get_json())
    assert Message.get_by_id(message["id"]).state == "failed"
    assert queues.client.llen("dramatiq:email") == 0
