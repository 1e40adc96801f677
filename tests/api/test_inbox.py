"""The in-app inbox: who sees what, per-user state of broadcasts, expiry, isolation."""

from datetime import timedelta

from models.base import utcnow
from models.inbox import BroadcastState
from models.message import Message
from models.notification import Notification
from tests.inbox_support import (
    broadcast_body,
    inapp_body,
    inbox,
    send_inapp,
    subjects,
    token_for,
)


def titled(subject: str, *users: str, **extra) -> dict:
    body = inapp_body(*users, **extra)
    body["message"]["subject"] = subject
    return body


def test_unicast_reaches_only_its_users_and_broadcasts_reach_everyone(
    client, sender, admin, worker
):
    send_inapp(client, sender, titled("for ana", "ana"))
    send_inapp(client, sender, titled("for ana and bob", "ana", "bob"))
    send_inapp(client, sender, broadcast_body())
    ana, bob, dan = (token_for(client, admin, user) for user in ("ana", "bob", "dan"))

    assert subjects(client, ana) == ["Mentenanță", "for ana and bob", "for ana"]
    assert subjects(client, bob) == ["Mentenanță", "for ana and bob"]
    assert subjects(client, dan) == ["Mentenanță"]
    assert client.get("/v1/inbox/count", headers=ana).get_json() == {"unread": 3, "total": 3}
    item = inbox(client, ana)[1]
    assert item["state"] == "unread" and item["broadcast"] is False
    assert item["body"] == "Dosarul dvs. a fost aprobat."


def test_an_inapp_broadcast_is_one_row_and_state_rows_only_for_users_who_act(
    client, sender, admin, worker
):
    posted = send_inapp(client, sender, broadcast_body())
    assert posted["messages"] == []
    assert Notification.get_by_id(posted["id"]).fanout_state == "none"
    ana, bob, dan = (token_for(client, admin, user) for user in ("ana", "bob", "dan"))

    item_id = inbox(client, ana)[0]["id"]
    assert item_id == posted["id"]
    read = client.patch(f"/v1/inbox/{item_id}", json={"state": "read"}, headers=ana)
    assert read.status_code == 200
    deleted = client.patch(f"/v1/inbox/{item_id}", json={"state": "deleted"}, headers=bob)
    assert deleted.status_code == 200

    assert [i["state"] for i in inbox(client, ana)] == ["read"]
    assert inbox(client, ana, "?state=unread") == []
    assert inbox(client, bob) == []
    assert [i["state"] for i in inbox(client, dan)] == ["unread"]
    rows = {(s.recipient_key, s.state) for s in BroadcastState.select()}
    assert rows == {("ana", "read"), ("bob", "deleted")}
    readers = client.get(f"/v1/notifications/{posted['id']}/readers", headers=sender.headers)
    assert [(r["user"], r["state"]) for r in readers.get_json()] == [
        ("ana", "read"),
        ("bob", "deleted"),
    ]
    assert "readers" not in inbox(client, dan)[0] and "ana" not in str(inbox(client, dan))


def test_a_deleted_broadcast_cannot_be_undeleted(client, sender, admin, worker):
    posted = send_inapp(client, sender, broadcast_body())
    ana = token_for(client, admin, "ana")
    client.patch(f"/v1/inbox/{posted['id']}", json={"state": "deleted"}, headers=ana)
    again = client.patch(f"/v1/inbox/{posted['id']}", json={"state": "read"}, headers=ana)
    assert again.status_code == 404


def test_unicast_read_and_delete_are_per_message(client, sender, admin, worker):
    posted = send_inapp(client, sender, titled("both", "ana", "bob"))
    ana, bob = token_for(client, admin, "ana"), token_for(client, admin, "bob")
    ana_item = inbox(client, ana)[0]
    assert client.patch(f"/v1/inbox/{ana_item['id']}", json={"state": "read"}, headers=ana)
    assert inbox(client, ana)[0]["state"] == "read"
    assert inbox(client, ana)[0]["readAt"] is not None
    assert inbox(client, bob)[0]["state"] == "unread"
    message = Message.get_by_id(ana_item["id"])
    assert message.state == "read" and message.read_at is not None
    client.patch(f"/v1/inbox/{ana_item['id']}", json={"state": "deleted"}, headers=ana)
    assert inbox(client, ana) == []
    assert client.get("/v1/inbox/count", headers=ana).get_json() == {"unread": 0, "total": 0}
    assert posted["id"] == ana_item["notificationId"]


def test_expiry_hides_items_at_query_time(client, sender, admin, worker):
    future = (utcnow() + timedelta(hours=1)).isoformat()
    unicast = send_inapp(client, sender, titled("expires", "ana", validTill=future))
    broadcast = send_inapp(client, sender, broadcast_body(validTill=future))
    send_inapp(client, sender, titled("stays", "ana"))
    ana = token_for(client, admin, "ana")
    assert len(inbox(client, ana)) == 3

    past = utcnow() - timedelta(seconds=1)
    ids = [unicast["id"], broadcast["id"]]
    Notification.update(valid_till=past).where(Notification.id.in_(ids)).execute()
    assert subjects(client, ana) == ["stays"]
    assert client.get("/v1/inbox/count", headers=ana).get_json() == {"unread": 1, "total": 1}


def test_another_users_item_is_404(client, sender, admin, worker):
    send_inapp(client, sender, titled("private", "ana"))
    ana, bob = token_for(client, admin, "ana"), token_for(client, admin, "bob")
    item_id = inbox(client, ana)[0]["id"]
    for response in (
        client.get(f"/v1/inbox/{item_id}", headers=bob),
        client.patch(f"/v1/inbox/{item_id}", json={"state": "read"}, headers=bob),
        client.post(f"/v1/inbox/{item_id}/actions", json={"actionType": "IsRead"}, headers=bob),
    ):
        assert response.status_code == 404
    assert inbox(client, ana)[0]["state"] == "unread"


def test_a_senders_token_shows_only_that_senders_notifications(
    client, sender, other_sender, admin, worker
):
    send_inapp(client, sender, titled("from acme", "ana"))
    send_inapp(client, other_sender, titled("from globex", "ana"))
    send_inapp(
        client, other_sender, broadcast_body(message={"subject": "globex news", "body": "x"})
    )

    assert subjects(client, token_for(client, sender, "ana")) == ["from acme"]
    assert subjects(client, token_for(client, other_sender, "ana")) == [
        "globex news",
        "from globex",
    ]
    assert len(inbox(client, token_for(client, admin, "ana"))) == 3


def test_patch_accepts_only_state(client, sender, admin, worker):
    send_inapp(client, sender, titled("x", "ana"))
    ana = token_for(client, admin, "ana")
    item_id = inbox(client, ana)[0]["id"]
    extra = client.patch(f"/v1/inbox/{item_id}", json={"state": "read", "x": 1}, headers=ana)
    assert extra.status_code == 400 and "x" in extra.get_json()["errors"]
    wrong = client.patch(f"/v1/inbox/{item_id}", json={"state": "unread"}, headers=ana)
    assert wrong.status_code == 400 and "state" in wrong.get_json()["errors"]


def test_idnp_cabinet_copies_are_in_that_persons_inbox(client, sender, admin, worker):
    from tests.factories import contact_body, idnp

    assert (
        client.post("/v1/contacts", json=contact_body(1), headers=admin.headers).status_code == 201
    )
    body = {
        "recipients": [{"type": "idnp", "value": idnp(1)}],
        "channels": ["inapp"],
        "message": {"subject": "Cabinet", "body": "Pentru dvs."},
    }
    posted = client.post("/v1/notifications", json=body, headers=sender.headers).get_json()
    from tests.support import wait_until

    person = token_for(client, admin, idnp(1))
    wait_until(lambda: subjects(client, person) == ["Cabinet"])
    assert inbox(client, person)[0]["notificationId"] == posted["id"]


def test_paging_the_inbox(client, sender, admin, worker):
    for number in range(3):
        send_inapp(client, sender, titled(f"n{number}", "ana"))
    send_inapp(client, sender, broadcast_body())
    ana = token_for(client, admin, "ana")
    first = client.get("/v1/inbox?page=1&pageSize=3", headers=ana)
    second = client.get("/v1/inbox?page=2&pageSize=3", headers=ana)
    assert [i["subject"] for i in first.get_json()] == ["Mentenanță", "n2", "n1"]
    assert [i["subject"] for i in second.get_json()] == ["n0"]
    assert '"total": 4' in first.headers["X-Pagination"]
