"""What every channel gets from the delivery task: in-app storage, shared rate limits."""

from models.message import Message
from models.states import MessageState
from settings import settings
from tests.support import wait_until


def inapp(*users: str) -> dict:
    return {
        "recipients": [{"type": "user", "value": user} for user in users],
        "message": {"subject": "Dosar aprobat", "body": "Dosarul dvs. a fost aprobat."},
    }


def test_an_inapp_message_becomes_unread_for_its_user(client, sender, worker):
    posted = client.post("/v1/notifications", json=inapp("user-7"), headers=sender.headers)
    assert posted.status_code == 202
    message_id = posted.get_json()["messages"][0]["id"]
    assert posted.get_json()["messages"][0]["channel"] == "inapp"

    wait_until(lambda: Message.get_by_id(message_id).state == MessageState.UNREAD)
    notification = client.get(
        f"/v1/notifications/{posted.get_json()['id']}", headers=sender.headers
    )
    assert notification.get_json()["state"] == "completed"


def test_a_rate_limited_channel_never_exceeds_its_rate(client, sender, worker, monkeypatch):
    monkeypatch.setattr(settings.INAPP, "RATE_LIMIT_PER_SECOND", 5)
    users = [f"user-{n}" for n in range(15)]
    client.post("/v1/notifications", json=inapp(*users), headers=sender.headers)

    wait_until(lambda: Message.select().where(Message.state == MessageState.UNREAD).count() == 15)

    sent = sorted(m.sent_at for m in Message.select())
    # 15 sends at 5 per one-second window need at least three windows: over a second apart.
    assert (sent[-1] - sent[0]).total_seconds() >= 1.0


def test_recipient_values_are_validated_by_their_channel(client, sender):
    body = inapp("user-1")
    body["recipients"].append({"type": "user", "value": {"id": 1}})
    response = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert response.status_code == 400
    assert response.get_json()["errors"]["recipients"] == {
        "1": {"value": ["Must be a non-empty string."]}
    }
