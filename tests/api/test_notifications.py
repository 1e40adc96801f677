"""POST/GET /v1/notifications and GET /v1/messages: accept, store, and report."""

from models.message import Message
from models.notification import Notification
from tests.factories import email_notification


def test_accept_answers_202_with_the_notification_and_its_queued_messages(client, sender):
    body = email_notification(
        "ion@example.md",
        "maria@example.md",
        serviceName="permits",
        event="PERMIT_READY",
        targetId="P-17",
        targetType="permit",
        reference="ref-1",
    )

    response = client.post("/v1/notifications", json=body, headers=sender.headers)

    assert response.status_code == 202
    data = response.get_json()
    assert data["state"] == "pending"
    assert data["serviceName"] == "permits"
    assert data["event"] == "PERMIT_READY"
    assert data["targetId"] == "P-17"
    assert data["targetType"] == "permit"
    assert data["reference"] == "ref-1"
    assert data["message"] == body["message"]
    assert data["createdAt"].endswith("+00:00")
    assert [(m["channel"], m["destination"], m["state"]) for m in data["messages"]] == [
        ("email", "ion@example.md", "queued"),
        ("email", "maria@example.md", "queued"),
    ]
    stored = Notification.get_by_id(data["id"])
    assert stored.sender_id == sender.sender.id
    assert Message.select().where(Message.notification == stored).count() == 2


def test_get_notification_and_message(client, sender):
    posted = client.post("/v1/notifications", json=email_notification(), headers=sender.headers)
    notification_id = posted.get_json()["id"]
    message_id = posted.get_json()["messages"][0]["id"]

    notification = client.get(f"/v1/notifications/{notification_id}", headers=sender.headers)
    message = client.get(f"/v1/messages/{message_id}", headers=sender.headers)

    assert notification.status_code == 200
    assert notification.get_json()["messages"][0]["id"] == message_id
    assert message.status_code == 200
    data = message.get_json()
    assert data["notificationId"] == notification_id
    assert data["destination"] == "ion@example.md"
    assert data["state"] == "queued"
    assert data["attempts"] == 0
    assert data["attemptHistory"] == []


def test_unknown_ids_are_404_in_the_error_contract(client, sender):
    missing = "01a205c0-2cad-77b8-9d6c-5d1f7133d763"
    for path in (f"/v1/notifications/{missing}", f"/v1/messages/{missing}"):
        response = client.get(path, headers=sender.headers)
        assert response.status_code == 404
        assert response.get_json()["code"] == 404
        assert response.get_json()["status"] == "Not Found"


def test_openapi_document_describes_the_api(client):
    spec = client.get("/openapi.json").get_json()
    assert "/v1/notifications" in spec["paths"]
    assert "202" in spec["paths"]["/v1/notifications"]["post"]["responses"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "recipients" in spec["components"]["schemas"]["NotificationCreate"]["properties"]


def test_docs_page_and_its_assets_are_served_locally(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert b"/docs/assets/swagger-ui-bundle.js" in page.data
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert len(asset.data) > 100_000
