"""User tokens, notification actions (the audit trail) and soft deletion."""

from datetime import timedelta

from models.base import utcnow
from models.message import Message
from models.states import MessageState
from models.user_token import mint_user_token
from tests.factories import email_notification
from tests.inbox_support import broadcast_body, inapp_body, inbox, send_inapp, token_for


def test_expired_or_forged_user_tokens_are_401(client, admin, db):
    token, _ = mint_user_token("ana", None, 3600, now=utcnow() - timedelta(hours=2))
    expired = client.get("/v1/inbox", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and "expired" in expired.get_json()["message"]
    good = token_for(client, admin, "ana")["Authorization"]
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    assert client.get("/v1/inbox", headers={"Authorization": forged}).status_code == 401
    assert (
        client.get("/v1/inbox/count", headers={"Authorization": "Bearer hu_x.y"}).status_code == 401
    )


def test_a_user_token_reaches_only_the_inbox(client, admin, db):
    ana = token_for(client, admin, "ana")
    assert client.get("/v1/inbox", headers=ana).status_code == 200
    for method, path in (
        ("get", "/v1/contacts"),
        ("post", "/v1/notifications"),
        ("post", "/v1/inbox/tokens"),
    ):
        response = getattr(client, method)(path, json={}, headers=ana)
        assert response.status_code == 403, path
    assert client.get("/v1/inbox", headers=admin.headers).status_code == 403


def test_token_requests_are_checked(client, sender, db):
    too_long = client.post(
        "/v1/inbox/tokens", json={"user": "ana", "ttlSeconds": 10**9}, headers=sender.headers
    )
    assert too_long.status_code == 400 and "ttlSeconds" in too_long.get_json()["errors"]
    minted = client.post("/v1/inbox/tokens", json={"user": "ana"}, headers=sender.headers)
    assert set(minted.get_json()) == {"token", "user", "expiresAt"}


def test_the_action_audit_trail(client, sender, admin, worker):
    posted = send_inapp(client, sender, inapp_body("ana", requireAction=True))
    ana = token_for(client, admin, "ana")
    item = inbox(client, ana)[0]
    assert item["actionRequired"] is True

    seen = client.post(
        f"/v1/inbox/{item['id']}/actions", json={"actionType": "IsRead"}, headers=ana
    )
    assert seen.status_code == 201
    assert inbox(client, ana)[0]["state"] == "read"
    assert inbox(client, ana)[0]["actionRequired"] is True
    url = f"/v1/notifications/{posted['id']}"
    approved = client.post(
        f"{url}/actions",
        json={
            "actionType": "Approved",
            "actionNote": "Actele sunt în regulă",
            "performedBy": "I. Popa",
        },
        headers=sender.headers,
    )
    assert approved.status_code == 201
    patched = client.patch(
        url, json={"actionType": "Validate", "actionNote": "ok"}, headers=sender.headers
    )
    assert patched.status_code == 200
    assert inbox(client, ana)[0]["actionRequired"] is False

    trail = client.get(f"{url}/actions", headers=sender.headers).get_json()
    assert [(a["actionType"], a["recordedBy"], a["user"], a["performedBy"]) for a in trail] == [
        ("IsRead", "user", "ana", "ana"),
        ("Approved", "sender", None, "I. Popa"),
        ("Validate", "sender", None, None),
    ]
    assert trail[1]["actionNote"] == "Actele sunt în regulă" and trail[1]["createdAt"]


def test_unknown_action_types_are_400_listing_the_allowed(client, sender, worker):
    posted = send_inapp(client, sender, inapp_body("ana"))
    response = client.post(
        f"/v1/notifications/{posted['id']}/actions",
        json={"actionType": "Shrug"},
        headers=sender.headers,
    )
    assert response.status_code == 400
    message = str(response.get_json()["errors"]["actionType"])
    for allowed in ("Initiated", "Approved", "Validate", "Rejected", "IsRead"):
        assert allowed in message


def test_another_senders_notification_is_hidden(client, sender, other_sender, worker):
    posted = send_inapp(client, sender, inapp_body("ana"))
    url = f"/v1/notifications/{posted['id']}"
    headers = other_sender.headers
    assert (
        client.post(f"{url}/actions", json={"actionType": "Approved"}, headers=headers).status_code
        == 404
    )
    assert client.get(f"{url}/actions", headers=headers).status_code == 404
    assert client.delete(url, headers=headers).status_code == 404


def test_soft_delete_hides_cancels_and_keeps_for_audit(client, sender, admin, worker):
    posted = send_inapp(client, sender, inapp_body("ana"))
    broadcast = send_inapp(client, sender, broadcast_body())
    ana = token_for(client, admin, "ana")
    item_id = inbox(client, ana)[1]["id"]
    url = f"/v1/notifications/{posted['id']}"

    assert client.delete(url, headers=sender.headers).status_code == 204
    assert (
        client.delete(f"/v1/notifications/{broadcast['id']}", headers=sender.headers).status_code
        == 204
    )
    assert inbox(client, ana) == []
    assert client.get(url, headers=sender.headers).status_code == 200
    assert client.delete(url, headers=sender.headers).status_code == 409
    late = client.post(f"{url}/actions", json={"actionType": "Approved"}, headers=sender.headers)
    assert late.status_code == 409
    by_user = client.post(
        f"/v1/inbox/{item_id}/actions", json={"actionType": "IsRead"}, headers=ana
    )
    assert by_user.status_code == 409


def test_deleting_cancels_messages_not_yet_sent(client, sender, queues, db):
    posted = client.post(
        "/v1/notifications",
        json=email_notification("a@example.md", "b@example.md"),
        headers=sender.headers,
    ).get_json()
    first, second = (m["id"] for m in posted["messages"])
    Message.update(state=MessageState.SENT).where(Message.id == first).execute()

    assert (
        client.delete(f"/v1/notifications/{posted['id']}", headers=sender.headers).status_code
        == 204
    )
    assert Message.get_by_id(first).state == MessageState.SENT
    assert Message.get_by_id(second).state == MessageState.CANCELLED


def test_validtill_in_the_past_is_400(client, sender, db):
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    response = client.post(
        "/v1/notifications", json=inapp_body("ana", validTill=past), headers=sender.headers
    )
    assert response.status_code == 400 and "validTill" in response.get_json()["errors"]
