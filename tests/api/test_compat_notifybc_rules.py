"""Herald's promises met through /compat/notifybc: isolation between senders, privacy
masking, retention, the trusted-proxy setting, and a property: any sequence of users' reads
and deletes of broadcasts matches a model and never shows readBy/deletedBy to a user."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from models.base import utcnow
from models.inbox import BroadcastState
from models.message import Message
from scheduler.jobs import purge
from setting_kinds import InvalidSetting
from settings import SETTINGS, settings
from tests.factories import idnp, stored_message
from tests.inbox_support import broadcast_body, token_for
from tests.support import settled, wait_until

BASE = "/compat/notifybc/api/notifications"
PROXY = {"REMOTE_ADDR": "10.1.2.3"}
BROADCAST = {
    "isBroadcast": True,
    "serviceName": "myService",
    "message": {"title": "Mentenanță", "body": "Portalul va fi oprit duminică."},
}


@pytest.fixture(autouse=True)
def trusted_proxy(monkeypatch):
    monkeypatch.setattr(settings, "TRUSTED_PROXY_ADDRESSES", "10.0.0.0/8")


def create(client, who, body: dict) -> dict:
    answer = client.post(BASE, json=body, headers=who.headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def ids(answer) -> set[str]:
    assert answer.status_code == 200, answer.get_json()
    return {item["id"] for item in answer.get_json()}


def sm(user: str) -> dict:
    return {"headers": {"SM_USER": user}, "environ_base": PROXY}


# --- isolation -----------------------------------------------------------------------------
def test_a_sender_sees_and_changes_only_its_own(client, sender, other_sender):
    mine = create(client, sender, BROADCAST)
    theirs = create(client, other_sender, BROADCAST)
    assert ids(client.get(BASE, headers=sender.headers)) == {mine["id"]}
    path = f"{BASE}/{theirs['id']}"
    assert client.get(path, headers=sender.headers).status_code == 404
    assert client.patch(path, json={"state": "deleted"}, headers=sender.headers).status_code == 404
    assert client.put(path, json={"state": "deleted"}, headers=sender.headers).status_code == 404
    assert client.delete(path, headers=sender.headers).status_code == 404
    assert client.get(path, headers=other_sender.headers).get_json()["state"] == "new"


def test_an_admin_key_sees_every_senders(client, sender, other_sender, admin):
    mine = create(client, sender, BROADCAST)
    theirs = create(client, other_sender, BROADCAST)
    assert ids(client.get(BASE, headers=admin.headers)) == {mine["id"], theirs["id"]}


def test_a_sender_minted_token_sees_only_that_senders(client, sender, other_sender, admin):
    mine = create(client, sender, BROADCAST)
    theirs = create(client, other_sender, BROADCAST)
    token = token_for(client, sender, "bar")
    assert ids(client.get(BASE, headers=token)) == {mine["id"]}
    path = f"{BASE}/{theirs['id']}"
    assert client.get(path, headers=token).status_code == 404
    assert client.patch(path, json={"state": "read"}, headers=token).status_code == 404
    assert client.delete(path, headers=token).status_code == 404
    assert BroadcastState.select().count() == 0
    everyone = token_for(client, admin, "bar")
    assert ids(client.get(BASE, headers=everyone)) == {mine["id"], theirs["id"]}


def test_sm_user_reads_every_senders_broadcasts(client, sender, other_sender):
    mine = create(client, sender, BROADCAST)
    theirs = create(client, other_sender, BROADCAST)
    assert ids(client.get(BASE, **sm("bar"))) == {mine["id"], theirs["id"]}


def test_an_unknown_id_is_404_and_a_bad_one_too(client, sender):
    unknown = f"{BASE}/{uuid.uuid4()}"
    assert client.get(unknown, headers=sender.headers).status_code == 404
    assert client.delete(unknown, **sm("bar")).status_code == 404
    assert client.get(f"{BASE}/42", headers=sender.headers).status_code == 404


def test_a_forged_user_token_is_401(client, sender):
    create(client, sender, BROADCAST)
    assert client.get(BASE, headers={"Authorization": "Bearer hu_forged"}).status_code == 401
    assert client.get(BASE, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_an_overlong_sm_user_is_401(client, sender):
    assert client.get(BASE, **sm("x" * 201)).status_code == 401


# --- privacy and retention -----------------------------------------------------------------
def test_an_address_from_the_contact_registry_is_masked(client, sender):
    message = stored_message(
        sender.sender, recipient_key=idnp(700), destination="persoana@example.md"
    )
    shown = client.get(f"{BASE}/{message.notification_id}", headers=sender.headers).get_json()
    assert shown["userChannelId"] == "p***@example.md"
    assert shown["channel"] == "email" and shown["state"] == "sent"


def test_after_retention_content_is_null_and_a_broadcast_leaves(
    client, sender, worker, smtp, monkeypatch
):
    broadcast = create(client, sender, BROADCAST | {"data": {"case": "A-1"}})
    assert client.patch(f"{BASE}/{broadcast['id']}", json={"state": "read"}, **sm("bar"))
    email = create(
        client,
        sender,
        {
            "serviceName": "myService",
            "channel": "email",
            "userChannelId": "bar@foo.com",
            "userId": "bar",
            "message": {"from": "no_reply@bar.com", "subject": "s", "textBody": "t"},
        },
    )
    wait_until(settled(Message.get(Message.notification == email["id"]).id, "sent"))
    monkeypatch.setattr(settings, "MESSAGE_RETENTION_DAYS", 0)
    assert purge()["notifications"] == 2

    shown = {i["id"]: i for i in client.get(BASE, headers=sender.headers).get_json()}
    for kept in shown.values():
        assert kept["message"] is None and kept["data"] is None and kept["userId"] is None
    assert shown[email["id"]]["userChannelId"] is None
    assert shown[email["id"]]["state"] == "sent"
    assert shown[broadcast["id"]]["readBy"] == []
    assert client.get(BASE, **sm("bar")).get_json() == []
    after = client.patch(f"{BASE}/{broadcast['id']}", json={"state": "read"}, **sm("bar"))
    assert after.status_code == 403
    assert BroadcastState.select().count() == 0


# --- the core behaviour the dialect relies on ----------------------------------------------
def test_v1_inbox_hides_an_inapp_broadcast_until_its_send_at(client, sender):
    later = (utcnow() + timedelta(hours=1)).isoformat()
    posted = client.post(
        "/v1/notifications", json=broadcast_body(sendAt=later), headers=sender.headers
    )
    assert posted.status_code == 202
    headers = token_for(client, sender, "u-1")
    assert client.get("/v1/inbox", headers=headers).get_json() == []
    assert client.get("/v1/inbox/count", headers=headers).get_json()["total"] == 0


def test_the_trusted_proxies_setting_takes_addresses_and_cidrs():
    setting = SETTINGS["TRUSTED_PROXY_ADDRESSES"]
    assert setting.read(" 10.0.0.0/8, 192.0.2.7 ,::1") == "10.0.0.0/8, 192.0.2.7 ,::1"
    assert setting.read("") == ""
    for bad in ("10.0.0.0/33", "proxy.local", "10.0.0.1, 300.1.1.1"):
        with pytest.raises(InvalidSetting):
            setting.read(bad)
    assert setting.default == ""


# --- a property: users' reads and deletes of broadcasts ------------------------------------
USERS = ("ana", "ion", "vlad")
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(("PATCH read", "PUT read", "PATCH deleted", "DELETE")),
        st.integers(min_value=0, max_value=1),
    ),
    max_size=12,
)


@given(operations=OPERATIONS)
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_reads_and_deletes_match_the_model(client, sender, operations):
    run = uuid.uuid4().hex[:8]
    made = [create(client, sender, BROADCAST)["id"] for _ in range(2)]
    model: dict[tuple[str, int], str] = {}
    for user, operation, index in operations:
        method, _, state = operation.partition(" ")
        path = f"{BASE}/{made[index]}"
        kwargs = sm(f"{run}-{user}")
        if method == "DELETE":
            answer = client.delete(path, **kwargs)
        else:
            answer = client.open(path, method=method, json={"state": state}, **kwargs)
        assert answer.status_code == 204
        if model.get((user, index)) != "deleted":
            model[(user, index)] = "deleted" if method == "DELETE" else state
    for user in USERS:
        shown = client.get(BASE, **sm(f"{run}-{user}")).get_json()
        assert all("readBy" not in item and "deletedBy" not in item for item in shown)
        expected = {
            made[index]: "read" if model.get((user, index)) == "read" else "new"
            for index in range(2)
            if model.get((user, index)) != "deleted"
        }
        assert {item["id"]: item["state"] for item in shown if item["id"] in made} == expected
    for index, notification_id in enumerate(made):
        record = client.get(f"{BASE}/{notification_id}", headers=sender.headers).get_json()
        for state, key in (("read", "readBy"), ("deleted", "deletedBy")):
            wanted = {f"{run}-{u}" for u in USERS if model.get((u, index)) == state}
            assert set(record[key]) == wanted


def test_an_admin_may_put_back_a_purged_record_as_read(client, sender, monkeypatch):
    made = create(client, sender, BROADCAST)
    monkeypatch.setattr(settings, "MESSAGE_RETENTION_DAYS", 0)
    purge()
    path = f"{BASE}/{made['id']}"
    whole = client.get(path, headers=sender.headers).get_json()
    assert whole["message"] is None
    assert client.put(path, json=whole, headers=sender.headers).status_code == 204
    changed = client.put(path, json=whole | {"channel": "sms"}, headers=sender.headers)
    assert changed.status_code == 400 and "channel" in changed.get_json()["errors"]
