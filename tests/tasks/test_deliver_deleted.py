"""A message whose notification was deleted is not sent, even when a worker had already
claimed it (a delete cancels only the messages nobody claimed), and even though the worker
keeps the notification it read at the claim in its cache."""

from models.message import claim_message
from models.states import MessageState
from settings import settings
from tasks import deliver as delivery
from tests.factories import email_notification, message


def accepted(client, sender) -> tuple[str, str]:
    response = client.post("/v1/notifications", json=email_notification(), headers=sender.headers)
    assert response.status_code == 202
    body = response.get_json()
    return body["id"], body["messages"][0]["id"]


def test_a_message_claimed_before_the_delete_is_cancelled_not_sent(client, sender, smtp, queues):
    notification_id, message_id = accepted(client, sender)
    claimed = claim_message(message_id, settings.DELIVERY_LEASE_SECONDS)  # a worker's claim

    deleted = client.delete(f"/v1/notifications/{notification_id}", headers=sender.headers)
    assert deleted.status_code == 204
    assert message(message_id).state == MessageState.SENDING  # the delete left it alone

    assert delivery.still_wanted(claimed) is False
    assert message(message_id).state == MessageState.CANCELLED
    assert message(message_id).attempts == 0
    assert smtp.received == []


def test_the_whole_delivery_path_cancels_it(client, sender, smtp, queues, monkeypatch):
    """The delete lands right after ``deliver`` claimed the message: the claim is wrapped to
    delete through the API at that moment (no timing window can place it there otherwise)."""
    notification_id, message_id = accepted(client, sender)
    claim = delivery.claim_message

    def claim_then_delete(*args, **kwargs):
        claimed = claim(*args, **kwargs)
        deleted = client.delete(f"/v1/notifications/{notification_id}", headers=sender.headers)
        assert deleted.status_code == 204
        return claimed

    monkeypatch.setattr(delivery, "claim_message", claim_then_delete)

    delivery.deliver(message_id, "email")

    assert message(message_id).state == MessageState.CANCELLED
    assert smtp.received == []
