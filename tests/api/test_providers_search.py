"""History search and export find messages a provider's receipt delivered: STATE EQUALS
DELIVERED, ``state=delivered``, and readAt in what they show."""

import csv
import io

import pytest

from channels.viber import EVENTS_PATH
from settings import settings
from tests.factories import stored_message
from tests.fakes.viber import content_signature, event

TOKEN = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f"


@pytest.fixture
def receipts(monkeypatch):
    monkeypatch.setattr(settings, "VIBER_AUTH_TOKEN", TOKEN)


def deliver(client, token: int, kind: str = "delivered") -> None:
    body = event(kind, message_token=token, user_id="01234567890A=")
    headers = {"X-Viber-Content-Signature": content_signature(TOKEN, body)}
    response = client.post(EVENTS_PATH, data=body, headers=headers, content_type="application/json")
    assert response.get_json() == {"matched": 1, "unmatched": 0}


def search_state(client, sender, state: str) -> list[str]:
    body = {
        "filterConstraints": [
            {"filterSelection": "STATE", "filterElement": "EQUALS", "value": state}
        ]
    }
    response = client.post("/v1/messages/search", json=body, headers=sender.headers)
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()]


def test_delivered_messages_are_found_by_search_and_export(client, sender, other_sender, receipts):
    delivered = stored_message(sender.sender, channel="viber", provider_id="5491000000000000001")
    read = stored_message(sender.sender, channel="viber", provider_id="5491000000000000002")
    sent = stored_message(sender.sender, channel="viber", provider_id="5491000000000000003")
    theirs = stored_message(other_sender.sender, channel="viber", provider_id="5491000000000000004")
    deliver(client, 5491000000000000001)
    deliver(client, 5491000000000000002, "seen")
    deliver(client, 5491000000000000004)

    found = search_state(client, sender, "DELIVERED")
    assert sorted(found) == sorted([str(delivered.id), str(read.id)])
    assert search_state(client, sender, "delivered") == found
    assert search_state(client, sender, "SENT") == [str(sent.id)]
    assert str(theirs.id) not in found

    response = client.get("/v1/messages/export?state=delivered", headers=sender.headers)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["id"] for row in rows] == [str(delivered.id), str(read.id)]
    assert all(row["state"] == "delivered" and row["deliveredAt"] for row in rows)
    assert [bool(row["readAt"]) for row in rows] == [False, True]
