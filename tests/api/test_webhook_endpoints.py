"""``/v1/webhook-endpoints``: register, list, rotate and delete a sender's webhook URLs; the
secret is shown once; URLs are checked like webhook recipients; senders see only their own."""

import base64
import json

import pytest

from models.webhook_endpoint import WebhookEndpoint, normalise_url

URL = "https://permits.example.md/herald/webhooks"


def register(client, who, url=URL):
    return client.post("/v1/webhook-endpoints", json={"url": url}, headers=who.headers)


def registered(client, who, url=URL) -> dict:
    response = register(client, who, url)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def listed(client, who, **query) -> list[dict]:
    response = client.get("/v1/webhook-endpoints", query_string=query, headers=who.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_registered_endpoint_answers_its_secret_once(client, sender):
    endpoint = registered(client, sender)

    assert set(endpoint) == {"id", "url", "createdAt", "rotatedAt", "secret"}
    assert endpoint["url"] == URL
    assert endpoint["rotatedAt"] is None
    assert endpoint["secret"].startswith("whsec_")
    assert len(base64.b64decode(endpoint["secret"].removeprefix("whsec_"))) >= 24
    shown = listed(client, sender)
    assert [e["id"] for e in shown] == [endpoint["id"]]
    assert "secret" not in shown[0]
    assert endpoint["secret"] not in json.dumps(shown)


def test_each_endpoint_has_its_own_secret(client, sender):
    first = registered(client, sender, URL)
    second = registered(client, sender, URL + "/other")
    assert first["secret"] != second["secret"]
    assert first["secret"] != sender.sender.webhook_secret


def test_the_list_is_paginated(client, sender):
    ids = [registered(client, sender, f"{URL}/{n}")["id"] for n in range(3)]
    response = client.get(
        "/v1/webhook-endpoints", query_string={"pageSize": 2, "page": 2}, headers=sender.headers
    )
    assert [e["id"] for e in response.get_json()] == ids[2:]
    assert json.loads(response.headers["X-Pagination"])["total"] == 3


@pytest.mark.parametrize(
    "url",
    [
        "http://permits.example.md/hook",  # not https
        "https://127.0.0.1/hook",  # a private address
        "https://intranet.local/hook",
        "https://user:pass@permits.example.md/hook",
        "ftp://permits.example.md/",
        "https://permits.example.md/" + "a" * 2000,
        "",
    ],
)
def test_an_unsafe_url_is_refused_naming_the_field(client, sender, url):
    response = register(client, sender, url)
    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == ["url"]
    assert WebhookEndpoint.select().count() == 0


def test_the_same_refusals_as_a_webhook_recipient(client, sender):
    url = "https://10.0.0.8/hook"
    recipient = client.post(
        "/v1/notifications",
        json={"recipients": [{"type": "webhook", "value": url}], "message": {"body": "x"}},
        headers=sender.headers,
    ).get_json()
    endpoint = register(client, sender, url).get_json()
    assert endpoint["errors"]["url"][0] in json.dumps(recipient["errors"])


@pytest.mark.parametrize("body", [{}, {"url": URL, "secret": "mine"}, {"url": 5}, []])
def test_bad_bodies_are_400(client, sender, body):
    response = client.post("/v1/webhook-endpoints", json=body, headers=sender.headers)
    assert response.status_code == 400


def test_a_url_registers_once_per_sender_in_its_normal_form(client, sender, other_sender):
    registered(client, sender, URL)
    again = register(client, sender, "HTTPS://Permits.Example.MD:443/herald/webhooks#x")
    assert again.status_code == 409
    assert registered(client, other_sender, URL)["url"] == URL  # another sender may


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("HTTPS://Permits.Example.MD", "https://permits.example.md/"),
        ("https://permits.example.md:443/a?b=C", "https://permits.example.md/a?b=C"),
        ("https://permits.example.md:8443/A/", "https://permits.example.md:8443/A/"),
        ("https://[2001:DB8::1]:443/h#frag", "https://[2001:db8::1]/h"),
        ("http://127.0.0.1:80/h", "http://127.0.0.1/h"),
    ],
)
def test_normal_form(given, normal):
    assert normalise_url(given) == normal


def test_senders_see_and_touch_only_their_own(client, sender, other_sender, admin):
    mine = registered(client, sender)
    assert listed(client, other_sender) == []
    for method, path in (
        ("post", f"/v1/webhook-endpoints/{mine['id']}/rotate"),
        ("delete", f"/v1/webhook-endpoints/{mine['id']}"),
    ):
        response = getattr(client, method)(path, json={}, headers=other_sender.headers)
        assert response.status_code == 404
        assert "secret" not in json.dumps(response.get_json())
    assert WebhookEndpoint.get_by_id(mine["id"]).secret == mine["secret"]
    assert [e["id"] for e in listed(client, admin)] == [mine["id"]]


def test_rotation_answers_a_new_secret_and_keeps_the_old_for_the_grace(client, sender):
    endpoint = registered(client, sender)

    response = client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate", json={}, headers=sender.headers
    )

    assert response.status_code == 200
    rotated = response.get_json()
    assert rotated["id"] == endpoint["id"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != endpoint["secret"]
    assert rotated["rotatedAt"] is not None
    row = WebhookEndpoint.get_by_id(endpoint["id"])
    assert row.signing_secrets() == (rotated["secret"], endpoint["secret"])
    assert "secret" not in listed(client, sender)[0]


def test_a_deleted_endpoint_is_gone(client, sender):
    endpoint = registered(client, sender)
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    assert client.delete(path, headers=sender.headers).status_code == 204
    assert listed(client, sender) == []
    assert client.delete(path, headers=sender.headers).status_code == 404
    assert registered(client, sender)["secret"] != endpoint["secret"]  # a new one


def test_an_api_key_is_required(client):
    assert client.get("/v1/webhook-endpoints").status_code == 401
    assert client.post("/v1/webhook-endpoints", json={"url": URL}).status_code == 401
