"""Helpers for inbox tests: sending in-app notifications and reading inboxes as users."""

from __future__ import annotations

from models.states import MessageState
from tests.support import settled, wait_until


def inapp_body(*users: str, **extra) -> dict:
    body = {
        "recipients": [{"type": "user", "value": user} for user in users],
        "message": {"subject": "Dosar aprobat", "body": "Dosarul dvs. a fost aprobat."},
    }
    body.update(extra)
    return body


def broadcast_body(**extra) -> dict:
    body = {
        "isBroadcast": True,
        "serviceName": "permits",
        "channels": ["inapp"],
        "message": {"subject": "Mentenanță", "body": "Portalul va fi oprit duminică."},
    }
    body.update(extra)
    return body


def send_inapp(client, sender, body: dict) -> dict:
    """POST the notification and wait until its in-app messages are in their users' inboxes."""
    posted = client.post("/v1/notifications", json=body, headers=sender.headers)
    assert posted.status_code == 202, posted.get_json()
    for message in posted.get_json()["messages"]:
        wait_until(settled(message["id"], MessageState.UNREAD))
    return posted.get_json()


def token_for(client, sender, user: str, ttl: int = 3600) -> dict[str, str]:
    minted = client.post(
        "/v1/inbox/tokens", json={"user": user, "ttlSeconds": ttl}, headers=sender.headers
    )
    assert minted.status_code == 201, minted.get_json()
    return {"Authorization": f"Bearer {minted.get_json()['token']}"}


def inbox(client, headers, query: str = "") -> list[dict]:
    response = client.get(f"/v1/inbox{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def subjects(client, headers, query: str = "") -> list[str]:
    return [item["subject"] for item in inbox(client, headers, query)]
