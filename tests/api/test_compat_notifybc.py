"""NotifyBC's notification API under /compat/notifybc: the seed document's requests (``003``)
and NotifyBC's own scenarios (bcgov/NotifyBC test/notification.e2e-spec.ts), in Herald's
terms: admin requests carry a sender's key, user requests a user token or, from a trusted
proxy, SiteMinder's SM_USER."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

import pytest

from models.base import utcnow
from models.inbox import BroadcastState
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from settings import settings
from tests.inbox_support import token_for
from tests.support import settled, wait_until

BASE = "/compat/notifybc/api/notifications"
PROXY = {"REMOTE_ADDR": "10.1.2.3"}
STRANGER = {"REMOTE_ADDR": "192.0.2.66"}
INAPP_BROADCAST = {
    "channel": "inApp",
    "isBroadcast": True,
    "message": {"title": "test", "body": "this is a test"},
    "serviceName": "myService",
}


@pytest.fixture(autouse=True)
def trusted_proxy(monkeypatch):
    monkeypatch.setattr(settings, "TRUSTED_PROXY_ADDRESSES", "10.0.0.0/8, ::1")


def create(client, sender, body: dict) -> dict:
    answer = client.post(BASE, json=body, headers=sender.headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def as_sm(client, method: str, path: str = BASE, user: str = "bar", **kwargs):
    return client.open(path, method=method, headers={"SM_USER": user}, environ_base=PROXY, **kwargs)


def listing(client, headers=None, filter_=None, environ=None):
    query = f"?filter={quote(json.dumps(filter_))}" if filter_ is not None else ""
    return client.get(BASE + query, headers=headers or {}, environ_base=environ or {})


# --- the seed document ---------------------------------------------------------------------
def test_seed_post_answers_the_saved_record_in_notifybcs_model(client, sender):
    saved = create(client, sender, INAPP_BROADCAST)
    assert saved["id"] and saved["state"] == "new"
    assert saved["serviceName"] == "myService" and saved["channel"] == "inApp"
    assert saved["isBroadcast"] is True and saved["userChannelId"] is None
    assert saved["message"] == {"title": "test", "body": "this is a test"}
    assert saved["created"] and saved["updated"] and saved["validTill"] is None
    assert saved["readBy"] == [] and saved["deletedBy"] == []


def test_seed_channel_defaults_to_inapp(client, sender, worker):
    saved = create(
        client,
        sender,
        {"serviceName": "myService", "userChannelId": "bar", "message": {}}
        | {"message": {"body": "hello"}},
    )
    assert saved["channel"] == "inApp" and saved["userChannelId"] == "bar"
    assert saved["isBroadcast"] is False


def test_seed_get_for_a_user_applies_the_five_constraints(client, sender, worker):
    """NotifyBC's GET fixture: only the broadcast bar has read is shown, as read."""
    create(client, sender, INAPP_BROADCAST | {"validTill": "2000-01-01"})
    read = create(client, sender, INAPP_BROADCAST)
    deleted = create(client, sender, INAPP_BROADCAST)
    create(client, sender, INAPP_BROADCAST | {"invalidBefore": "3017-05-30"})
    create(
        client,
        sender,
        {
            "channel": "email",
            "isBroadcast": True,
            "message": {"from": "no_reply@invlid.local", "subject": "hello", "htmlBody": "hello"},
            "serviceName": "myService",
        },
    )
    other = create(
        client,
        sender,
        {"serviceName": "myService", "userChannelId": "baz"} | {"message": {"body": "for baz"}},
    )
    assert as_sm(client, "PATCH", f"{BASE}/{read['id']}", json={"state": "read"}).status_code == 204
    assert as_sm(client, "DELETE", f"{BASE}/{deleted['id']}").status_code == 204

    answer = client.get(BASE, headers={"SM_USER": "bar"}, environ_base=PROXY)
    assert answer.status_code == 200
    shown = answer.get_json()
    assert [item["id"] for item in shown] == [read["id"]]
    assert shown[0]["state"] == "read"
    assert "readBy" not in shown[0] and "deletedBy" not in shown[0]
    assert other["id"] not in {item["id"] for item in shown}


def test_seed_get_for_an_admin_is_unabridged(client, sender):
    read = create(client, sender, INAPP_BROADCAST)
    as_sm(client, "PATCH", f"{BASE}/{read['id']}", json={"state": "read"})
    as_sm(client, "DELETE", f"{BASE}/{read['id']}", user="qux")
    expired = create(client, sender, INAPP_BROADCAST | {"validTill": "2000-01-01"})
    shown = {item["id"]: item for item in listing(client, sender.headers).get_json()}
    assert set(shown) == {read["id"], expired["id"]}
    assert shown[read["id"]]["readBy"] == ["bar"]
    assert shown[read["id"]]["deletedBy"] == ["qux"]
    assert shown[read["id"]]["state"] == "new"
    assert shown[expired["id"]]["validTill"].startswith("2000-01-01T00:00:00")


def test_seed_put_marks_an_inapp_notification_read_or_deleted_for_the_user(client, sender):
    made = create(client, sender, INAPP_BROADCAST)
    path = f"{BASE}/{made['id']}"
    assert as_sm(client, "PUT", path, json={"state": "read"}).status_code == 204
    assert [i["state"] for i in as_sm(client, "GET").get_json()] == ["read"]
    assert as_sm(client, "PUT", path, json={"state": "deleted"}).status_code == 204
    assert as_sm(client, "GET").get_json() == []


def test_seed_filter_fields_where_order_skip_limit(client, sender):
    ids = [
        create(client, sender, INAPP_BROADCAST | {"serviceName": f"svc-{n}"})["id"]
        for n in range(4)
    ]
    spec = {
        "where": {"serviceName": {"inq": ["svc-0", "svc-1", "svc-2"]}},
        "order": "created ASC",
        "skip": 1,
        "limit": 1,
        "fields": ["id", "serviceName"],
    }
    assert listing(client, sender.headers, spec).get_json() == [
        {"id": ids[1], "serviceName": "svc-1"}
    ]
    user = listing(client, {"SM_USER": "bar"}, spec, PROXY).get_json()
    assert user == [{"id": ids[1], "serviceName": "svc-1"}]
    offset = listing(client, sender.headers, spec | {"offset": 2, "skip": None} | {}).status_code
    assert offset == 400  # skip must be a number; offset is its alias
    spec.pop("skip")
    assert listing(client, sender.headers, spec | {"offset": 2}).get_json()[0]["id"] == ids[2]


# --- NotifyBC's GET scenarios --------------------------------------------------------------
def test_get_is_refused_to_an_anonymous_request(client, sender):
    assert client.get(BASE).status_code == 401


def test_sm_user_from_an_untrusted_peer_is_ignored(client, sender):
    create(client, sender, INAPP_BROADCAST)
    assert client.get(BASE, headers={"SM_USER": "bar"}, environ_base=STRANGER).status_code == 401
    made = create(client, sender, INAPP_BROADCAST)
    refused = client.patch(
        f"{BASE}/{made['id']}",
        json={"state": "read"},
        headers={"SM_USER": "bar"},
        environ_base=STRANGER,
    )
    assert refused.status_code == 401
    assert BroadcastState.select().count() == 0


def test_sm_user_is_ignored_when_no_proxy_is_trusted(client, sender, monkeypatch):
    monkeypatch.setattr(settings, "TRUSTED_PROXY_ADDRESSES", "")
    create(client, sender, INAPP_BROADCAST)
    assert client.get(BASE, headers={"SM_USER": "bar"}, environ_base=PROXY).status_code == 401


def test_sm_user_from_an_ipv6_trusted_peer(client, sender):
    create(client, sender, INAPP_BROADCAST)
    answer = client.get(BASE, headers={"SM_USER": "bar"}, environ_base={"REMOTE_ADDR": "::1"})
    assert answer.status_code == 200 and len(answer.get_json()) == 1


def test_a_user_token_reads_like_sm_user(client, sender, worker):
    made = create(
        client,
        sender,
        {"serviceName": "s", "userChannelId": "bar"} | {"message": {"title": "t", "body": "b"}},
    )
    wait_until(lambda: Message.get(Message.notification == made["id"]).state == "unread")
    headers = token_for(client, sender, "bar")
    shown = listing(client, headers).get_json()
    assert [(i["id"], i["state"], i["userChannelId"]) for i in shown] == [
        (made["id"], "new", "bar")
    ]
    assert shown[0]["message"] == {"title": "t", "body": "b"}
    assert listing(client, token_for(client, sender, "baz")).get_json() == []


def test_a_user_sees_only_inapp(client, sender, worker, smtp):
    create(
        client,
        sender,
        {
            "serviceName": "s",
            "channel": "email",
            "userChannelId": "bar@foo.com",
            "message": {"subject": "s", "textBody": "t"},
        },
    )
    assert listing(client, token_for(client, sender, "bar@foo.com")).get_json() == []


def test_a_user_where_filters_their_records(client, sender):
    create(client, sender, INAPP_BROADCAST | {"serviceName": "a"})
    b = create(client, sender, INAPP_BROADCAST | {"serviceName": "b"})
    spec = {"where": {"or": [{"serviceName": "b"}, {"created": {"lt": "2000-01-01"}}]}}
    assert [i["id"] for i in listing(client, {"SM_USER": "u"}, spec, PROXY).get_json()] == [b["id"]]
    bad = listing(client, {"SM_USER": "u"}, {"where": {"readBy": "u"}}, PROXY)
    assert bad.status_code == 400 and "filter" in bad.get_json()["errors"]


def test_an_admin_where_on_state_channel_and_isbroadcast(client, sender, worker):
    broadcast = create(client, sender, INAPP_BROADCAST)
    unicast = create(
        client, sender, {"serviceName": "s", "userChannelId": "bar"} | {"message": {"body": "b"}}
    )
    wait_until(settled(Message.get(Message.notification == unicast["id"]).id, "unread"))
    by = {
        json.dumps(where): [
            i["id"] for i in listing(client, sender.headers, {"where": where}).get_json()
        ]
        for where in (
            {"isBroadcast": True},
            {"isBroadcast": False},
            {"channel": "inApp"},
            {"channel": "email"},
            {"state": "new"},
            {"state": {"neq": "new"}},
            {"userChannelId": "bar"},
        )
    }
    assert by['{"isBroadcast": true}'] == [broadcast["id"]]
    assert by['{"isBroadcast": false}'] == [unicast["id"]]
    assert set(by['{"channel": "inApp"}']) == {broadcast["id"], unicast["id"]}
    assert by['{"channel": "email"}'] == []
    assert by['{"state": "new"}'] == [unicast["id"]]  # a state is a message's
    assert by['{"state": {"neq": "new"}}'] == []  # an in-app broadcast has no messages
    assert by['{"userChannelId": "bar"}'] == [unicast["id"]]


@pytest.mark.parametrize(
    "spec",
    [
        "not json",
        {"where": {"nope": 1}},
        {"where": {"state": "lost"}},
        {"where": {"state": {"gt": "new"}}},
        {"where": {"and": [{"isBroadcast": True}]}},
        {"limit": 0},
        {"limit": 501},
        {"skip": -1},
        {"fields": ["secret"]},
        {"order": "message DESC"},
        {"unknown": 1},
    ],
)
def test_a_bad_filter_is_a_400_naming_filter(client, sender, spec):
    raw = spec if isinstance(spec, str) else json.dumps(spec)
    answer = client.get(f"{BASE}?filter={quote(raw)}", headers=sender.headers)
    assert answer.status_code == 400, answer.get_json()
    assert "filter" in answer.get_json()["errors"]


# --- NotifyBC's POST scenarios -------------------------------------------------------------
def test_post_unicast_email_is_sent_asynchronously(client, sender, worker, smtp):
    saved = create(
        client,
        sender,
        {
            "serviceName": "myService",
            "message": {
                "from": "no_reply@bar.com",
                "subject": "test",
                "textBody": "This is a unicast test",
                "htmlBody": "<p>This is a unicast test</p>",
            },
            "channel": "email",
            "userId": "bar",
            "userChannelId": "bar@foo.COM",
        },
    )
    assert saved["state"] == "new" and saved["channel"] == "email"
    assert saved["userId"] == "bar"
    message_id = Message.get(Message.notification == saved["id"]).id
    wait_until(settled(message_id, MessageState.SENT))
    assert smtp.received[-1].rcpt_tos == ["bar@foo.COM"]
    assert b"Subject: test" in smtp.received[-1].raw
    again = client.get(f"{BASE}/{saved['id']}", headers=sender.headers).get_json()
    assert again["state"] == "sent"
    assert again["message"]["from"] == "no_reply@bar.com"
    assert again["message"]["htmlBody"] == "<p>This is a unicast test</p>"


def test_post_unicast_sms(client, sender, worker, twilio):
    saved = create(
        client,
        sender,
        {
            "serviceName": "myService",
            "message": {"textBody": "This is a unicast test"},
            "channel": "sms",
            "skipSubscriptionConfirmationCheck": True,
            "userChannelId": "+37369123456",
        },
    )
    message_id = Message.get(Message.notification == saved["id"]).id
    wait_until(settled(message_id, MessageState.SENT))
    assert client.get(f"{BASE}/{saved['id']}", headers=sender.headers).get_json()["state"] == "sent"


def test_post_future_dated_is_not_sent_before_invalid_before(client, sender, worker, smtp):
    saved = create(
        client,
        sender,
        {
            "serviceName": "myService",
            "message": {"from": "no_reply@bar.com", "subject": "test", "textBody": "later"},
            "channel": "email",
            "userChannelId": "bar@foo.com",
            "invalidBefore": "3017-06-01T00:00:00Z",
        },
    )
    assert saved["invalidBefore"].startswith("3017-06-01T00:00:00")
    assert Message.get(Message.notification == saved["id"]).state == MessageState.SCHEDULED


def test_post_unicast_without_user_channel_id_is_403(client, sender):
    answer = client.post(
        BASE,
        json={
            "serviceName": "myService",
            "message": {"from": "no_reply@bar.com", "subject": "test", "textBody": "x"},
            "channel": "email",
            "userId": "bar",
        },
        headers=sender.headers,
    )
    assert answer.status_code == 403 and "userChannelId" in answer.get_json()["errors"]
    assert Notification.select().count() == 0


def test_post_by_anonymous_is_refused(client):
    body = INAPP_BROADCAST | {"channel": "email"}
    assert client.post(BASE, json=body).status_code == 401


def test_post_by_a_user_is_403(client, sender):
    body = {"serviceName": "myService", "message": {"subject": "x"}, "isBroadcast": True}
    assert as_sm(client, "POST", json=body).status_code == 403
    user = client.post(BASE, json=body, headers=token_for(client, sender, "bar"))
    assert user.status_code == 403
    assert Notification.select().count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": {"body": "x"}, "isBroadcast": True}, "serviceName"),
        (INAPP_BROADCAST | {"channel": "push"}, "channel"),
        (INAPP_BROADCAST | {"message": "text"}, "message"),
        (INAPP_BROADCAST | {"validTill": "tomorrow"}, "validTill"),
        (
            INAPP_BROADCAST | {"broadcastPushNotificationSubscriptionFilter": "a"},
            "broadcastPushNotificationSubscriptionFilter",
        ),
        (INAPP_BROADCAST | {"userChannelId": "bar"}, "userChannelId"),
        (
            INAPP_BROADCAST | {"validTill": "2030-01-01", "invalidBefore": "2031-01-01"},
            "validTill",
        ),
        (
            {"serviceName": "s", "channel": "email", "userChannelId": "not-an-address"}
            | {"message": {"subject": "s", "textBody": "t"}},
            "userChannelId",
        ),
        (
            {"serviceName": "s", "channel": "email", "userChannelId": "a@b.md"}
            | {"message": {"textBody": "no subject"}},
            "message",
        ),
        (
            {"serviceName": "s", "channel": "email", "userChannelId": "a@b.md"}
            | {"message": {"subject": "s", "textBody": "t", "attachments": []}},
            "message",
        ),
    ],
)
def test_post_bad_input_is_a_400_naming_notifybcs_field(client, sender, body, field):
    answer = client.post(BASE, json=body, headers=sender.headers)
    assert answer.status_code == 400, answer.get_json()
    assert field in answer.get_json()["errors"], answer.get_json()
    assert Notification.select().count() == 0


def test_post_email_errors_name_notifybc_message_fields(client, sender):
    answer = client.post(
        BASE,
        json={"serviceName": "s", "channel": "email", "userChannelId": "a@b.md"}
        | {"message": {"textBody": "t"}},
        headers=sender.headers,
    )
    assert answer.get_json()["errors"]["message"] == {"subject": ["Required for email recipients."]}


# --- NotifyBC's PATCH and DELETE scenarios -------------------------------------------------
def test_patch_by_sm_user_appends_to_read_by_and_answers_204(client, sender):
    made = create(client, sender, INAPP_BROADCAST)
    answer = as_sm(
        client, "PATCH", f"{BASE}/{made['id']}", json={"serviceName": "myService", "state": "read"}
    )
    assert answer.status_code == 204 and answer.data == b""
    record = client.get(f"{BASE}/{made['id']}", headers=sender.headers).get_json()
    assert record["readBy"] == ["bar"] and record["state"] == "new"


def test_patch_by_an_admin_sets_state_deleted(client, sender):
    made = create(client, sender, INAPP_BROADCAST)
    answer = client.patch(f"{BASE}/{made['id']}", json={"state": "deleted"}, headers=sender.headers)
    assert answer.status_code == 204
    record = client.get(f"{BASE}/{made['id']}", headers=sender.headers).get_json()
    assert record["state"] == "deleted"
    assert as_sm(client, "GET").get_json() == []


def test_patch_by_anonymous_is_refused(client, sender):
    made = create(client, sender, INAPP_BROADCAST)
    body = {"serviceName": "myService", "state": "read"}
    assert client.patch(f"{BASE}/{made['id']}", json=body).status_code == 401
    assert BroadcastState.select().count() == 0


def test_delete_by_sm_user_appends_to_deleted_by(client, sender):
    made = create(client, sender, INAPP_BROADCAST)
    assert as_sm(client, "DELETE", f"{BASE}/{made['id']}").status_code == 204
    assert as_sm(client, "DELETE", f"{BASE}/{made['id']}").status_code == 204  # again: the same
    record = client.get(f"{BASE}/{made['id']}", headers=sender.headers).get_json()
    assert record["deletedBy"] == ["bar"] and record["state"] == "new"
    assert as_sm(client, "GET", user="someone-else").get_json()[0]["id"] == made["id"]


def test_delete_by_an_admin_sets_state_deleted(client, sender):
    made = create(client, sender, INAPP_BROADCAST)
    assert client.delete(f"{BASE}/{made['id']}", headers=sender.headers).status_code == 204
    assert client.delete(f"{BASE}/{made['id']}", headers=sender.headers).status_code == 204
    record = client.get(f"{BASE}/{made['id']}", headers=sender.headers).get_json()
    assert record["state"] == "deleted"
    assert Notification.get_by_id(made["id"]).deleted_at is not None


def test_delete_by_anonymous_is_refused(client, sender):
    made = create(client, sender, INAPP_BROADCAST)
    assert client.delete(f"{BASE}/{made['id']}").status_code == 401
    assert Notification.get_by_id(made["id"]).deleted_at is None


def test_a_user_on_a_unicast_addressed_to_someone_else_is_403(client, sender, worker):
    made = create(
        client, sender, {"serviceName": "s", "userChannelId": "baz"} | {"message": {"body": "b"}}
    )
    wait_until(settled(Message.get(Message.notification == made["id"]).id, "unread"))
    path = f"{BASE}/{made['id']}"
    assert as_sm(client, "PATCH", path, json={"state": "read"}).status_code == 403
    assert as_sm(client, "DELETE", path).status_code == 403
    assert as_sm(client, "GET", path).status_code == 403
    assert Message.get(Message.notification == made["id"]).state == MessageState.UNREAD


def test_a_user_marks_their_unicast_read_then_deleted(client, sender, worker):
    made = create(
        client, sender, {"serviceName": "s", "userId": "bar"} | {"message": {"body": "b"}}
    )
    message_id = Message.get(Message.notification == made["id"]).id
    wait_until(settled(message_id, "unread"))
    path = f"{BASE}/{made['id']}"
    assert as_sm(client, "PATCH", path, json={"state": "read"}).status_code == 204
    assert as_sm(client, "GET", path).get_json()["state"] == "read"
    admin_view = client.get(path, headers=sender.headers).get_json()
    assert admin_view["state"] == "read" and admin_view["readBy"] is None
    assert as_sm(client, "DELETE", path).status_code == 204
    assert as_sm(client, "GET").get_json() == []
    assert as_sm(client, "GET", path).status_code == 404


def test_a_user_patch_keeps_only_state(client, sender):
    made = create(client, sender, INAPP_BROADCAST)
    path = f"{BASE}/{made['id']}"
    body = {"state": "read", "serviceName": "changed", "message": {"title": "x"}}
    assert as_sm(client, "PATCH", path, json=body).status_code == 204
    record = client.get(path, headers=sender.headers).get_json()
    assert record["serviceName"] == "myService" and record["message"]["title"] == "test"
    assert as_sm(client, "PATCH", path, json={"serviceName": "x"}).status_code == 400
    assert as_sm(client, "PATCH", path, json={"state": "sent"}).status_code == 400
    assert as_sm(client, "PATCH", path, json={"state": "read", "nope": 1}).status_code == 400


def test_an_admin_merge_accepts_unchanged_fields_and_refuses_changed_ones(client, sender):
    made = create(client, sender, INAPP_BROADCAST | {"validTill": "2999-01-01"})
    path = f"{BASE}/{made['id']}"
    whole = client.get(path, headers=sender.headers).get_json()
    assert client.put(path, json=whole, headers=sender.headers).status_code == 204
    changed = client.patch(path, json={"validTill": "2998-01-01"}, headers=sender.headers)
    assert changed.status_code == 400 and "validTill" in changed.get_json()["errors"]
    read = client.patch(path, json={"state": "read"}, headers=sender.headers)
    assert read.status_code == 400 and "state" in read.get_json()["errors"]
    assert client.get(path, headers=sender.headers).get_json() == whole


def test_expired_and_not_yet_valid_are_hidden_from_users_only(client, sender):
    soon = (utcnow() + timedelta(days=1)).isoformat()
    later = create(client, sender, INAPP_BROADCAST | {"invalidBefore": soon})
    gone = create(client, sender, INAPP_BROADCAST | {"validTill": "2001-01-01T00:00:00Z"})
    assert as_sm(client, "GET").get_json() == []
    assert (
        as_sm(client, "PATCH", f"{BASE}/{later['id']}", json={"state": "read"}).status_code == 403
    )
    admin = {i["id"] for i in listing(client, sender.headers).get_json()}
    assert admin == {later["id"], gone["id"]}


def test_an_admin_marks_an_inapp_unicast_read(client, sender, worker):
    made = create(
        client, sender, {"serviceName": "s", "userChannelId": "bar"} | {"message": {"body": "b"}}
    )
    message_id = Message.get(Message.notification == made["id"]).id
    wait_until(settled(message_id, "unread"))
    path = f"{BASE}/{made['id']}"
    assert client.patch(path, json={"state": "read"}, headers=sender.headers).status_code == 204
    assert Message.get_by_id(message_id).state == MessageState.READ
    assert as_sm(client, "GET", path).get_json()["state"] == "read"


def test_sm_user_may_come_as_sm_hyphen_user(client, sender):
    create(client, sender, INAPP_BROADCAST)
    answer = client.get(BASE, headers={"SM-User": "bar"}, environ_base=PROXY)
    assert answer.status_code == 200 and len(answer.get_json()) == 1


def test_include_is_accepted_and_ignored(client, sender):
    made = create(client, sender, INAPP_BROADCAST)
    spec = {"include": ["subscriptions"], "fields": {"message": False, "data": False}}
    shown = listing(client, sender.headers, spec).get_json()
    assert [item["id"] for item in shown] == [made["id"]]
    assert "message" not in shown[0] and "serviceName" in shown[0]


def test_an_email_past_valid_till_is_never_sent(client, sender, worker, smtp):
    saved = create(
        client,
        sender,
        {
            "serviceName": "s",
            "channel": "email",
            "userChannelId": "bar@foo.com",
            "validTill": "2000-01-01",
            "message": {"subject": "s", "textBody": "t"},
        },
    )
    wait_until(settled(Message.get(Message.notification == saved["id"]).id, "failed"))
    assert (
        client.get(f"{BASE}/{saved['id']}", headers=sender.headers).get_json()["state"] == "error"
    )
    assert smtp.received == []


def test_an_inapp_message_past_four_kilobytes_is_a_400_naming_message(client, sender):
    body = INAPP_BROADCAST | {"message": {"title": "t", "body": "x" * 5000}}
    answer = client.post(BASE, json=body, headers=sender.headers)
    assert answer.status_code == 400 and "message" in answer.get_json()["errors"]


def test_an_html_only_email_gets_a_text_part(client, sender, worker, smtp):
    saved = create(
        client,
        sender,
        {
            "serviceName": "s",
            "channel": "email",
            "userChannelId": "bar@foo.com",
            "message": {"subject": "hello", "htmlBody": "<p>hello &amp; welcome</p>"},
        },
    )
    wait_until(settled(Message.get(Message.notification == saved["id"]).id, "sent"))
    assert b"hello & welcome" in smtp.received[-1].raw
