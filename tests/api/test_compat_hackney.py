"""The Hackney dialect (seed ``002``) under ``/compat/hackney``: every request the seed shows,
sent verbatim (its pseudo-JSON made valid JSON) and answered in the seed's shape; each of its
validation rules naming Hackney's field; actions, deletion, isolation between senders and
idempotency. Delivery, message status and retention: ``test_compat_hackney_delivery.py``.

The helpers at the top are shared with that file."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from models.action import NotificationAction
from models.message import Message
from models.notification import Notification
from models.states import MessageState
from settings import settings

BASE = "/compat/hackney"
#: The seed's ``templateId``, created in Herald as a template code.
TEMPLATE_CODE = "c6a75cc9-1193-..."

#: POST /notifications as the seed shows it; ``notificationType`` lists the four choices
#: ("Screen,Email, Text, Letter"), so each test picks one. Its duplicate "name" keys become one.
SEED_POST = {
    "targetId": "7e6041e2-01b6-4c41-9ccd-5b0932616b50",
    "targetType": "FailedDirectDebits,MissedServiceChargePayments,Estimates,Actuals",
    "notificationType": "Screen",
    "user": "test.user@hackney.gov.uk",
    "message": "3 missed service charge payments have exceeded the tolerance period",
    "serviceKey": "sample-15f6815b-....",
    "templateId": TEMPLATE_CODE,
    "mobileNumber": "0123 456 7890",
    "email": "test@example.com",
    "personalisationParams": {
        "name": "value",
        "firstName": "Joe",
        "lastName": "Bloggs",
        "addressLine1": "",
        "addressLine2": "",
        "addressLine3": "",
        "addressLine4": "",
        "addressLine5": "",
        "addressLine6": "",
        "addressLine7": "",
    },
    "requireAction": "true",
    "requireEmailNotification": False,
    "requireSmsNotification": False,
    "requireLetter": False,
}
#: PATCH /notifications/{id} as the seed shows it (``actionType`` lists the choices).
SEED_PATCH = {
    "id": "7e6041e2-01b6-4c41-9ccd-5b0932616b50",
    "actionType": "IsRead",
    "actionNote": "",
}
ADDRESS = {
    "addressLine1": "Joe Bloggs",
    "addressLine2": "1 Hillman Street",
    "addressLine3": "London",
    "addressLine4": "E8 1DY",
}

#: The item keys of the seed's GET answer, and the types each value may have.
ITEM_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "targetId": (str, type(None)),
    "targetType": (str, type(None)),
    "notificationType": (str, type(None)),
    "user": (str, type(None)),
    "message": (str, type(None)),
    "serviceKey": (str, type(None)),
    "templateId": (str, type(None)),
    "mobileNumber": (str, type(None)),
    "email": (str, type(None)),
    "requireAction": (bool,),
    "requireEmailNotification": (bool,),
    "requireSmsNotification": (bool,),
    "requireLetter": (bool,),
    "isReadStatus": (bool,),
    "sentMessageDetails": (list, type(None)),
    "actionNote": (str, type(None)),
    "performedActionDoneBy": (str, type(None)),
    "performedActionType": (str, type(None)),
    "isRemovable": (bool,),
    "personalisationParams": (dict, type(None)),
    "performedActionDate": (str, type(None)),
    "createdDate": (str,),
}
#: The keys of the seed's message-status answer.
STATUS_KEYS = {
    "id",
    "completedAt",
    "emailAddress",
    "body",
    "subject",
    "line1",
    "line2",
    "line3",
    "line4",
    "line5",
    "line6",
    "phoneNumber",
    "postage",
    "reference",
    "sentAt",
    "status",
    "type",
    "createdByName",
    "template",
}
#: ``2021-11-12T10:19:45.6224673Z`` (Hackney) and ``2021-11-12T17:27:47.917033Z`` (Notify).
HACKNEY_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
NOTIFY_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def seed_post(**changes) -> dict:
    """The seed's POST body with some fields changed (``personalisationParams`` merged)."""
    body = copy.deepcopy(SEED_POST)
    params = changes.pop("personalisationParams", None)
    body.update(changes)
    if params is not None:
        body["personalisationParams"].update(params)
    return body


def template_body() -> dict:
    """The Herald template behind the seed's ``templateId``: every channel Hackney uses."""
    return {
        "code": TEMPLATE_CODE,
        "name": "Missed payments",
        "defaultLanguage": "en",
        "attributes": [{"name": "firstName", "required": True}, {"name": "lastName"}],
        "contents": [
            {
                "channel": "email",
                "language": "en",
                "subject": "Missed payments",
                "body": "Dear {{ firstName }} {{ lastName }}, 3 payments were missed.",
            },
            {
                "channel": "default",
                "language": "en",
                "body": "Dear {{ firstName }}, 3 payments were missed.",
            },
        ],
    }


def make_template(client, who) -> str:
    response = client.post("/v1/templates", json=template_body(), headers=who.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def assert_item_shape(item: dict) -> None:
    """``item`` has exactly the seed's keys, each of its type, times in the seed's format."""
    assert set(item) == set(ITEM_TYPES)
    for key, types in ITEM_TYPES.items():
        assert isinstance(item[key], types), (key, item[key])
    assert HACKNEY_TIME.match(item["createdDate"])
    if item["performedActionDate"] is not None:
        assert HACKNEY_TIME.match(item["performedActionDate"])
    for sent in item["sentMessageDetails"] or []:
        assert set(sent) == {"id", "type", "status"}


def post(client, who, body, **headers):
    return client.post(f"{BASE}/notifications", json=body, headers=who.headers | headers)


def created(client, who, body) -> dict:
    response = post(client, who, body)
    assert response.status_code == 201, response.get_json()
    item = response.get_json()
    assert_item_shape(item)
    return item


def listed(client, who, **params) -> list[dict]:
    response = client.get(f"{BASE}/notifications", query_string=params, headers=who.headers)
    assert response.status_code == 200, response.get_json()
    items = response.get_json()
    for item in items:
        assert_item_shape(item)
    return items


@pytest.fixture
def uk(monkeypatch):
    """Numbers read as dialled in the UK, as Hackney's are."""
    monkeypatch.setattr(settings, "SMS_DEFAULT_REGION", "GB")


@pytest.fixture
def template(client, sender) -> str:
    return make_template(client, sender)


@pytest.fixture
def sms_configured(twilio, uk):
    """SMS is configured (the Twilio-shaped gateway; nothing is sent without a worker)."""
    return twilio


# --- POST, as the seed shows it --------------------------------------------------------------
def test_the_seeds_screen_notification_is_created_in_the_users_inbox(client, sender, template):
    item = created(client, sender, SEED_POST)

    assert item["notificationType"] == "Screen"
    assert item["targetId"] == SEED_POST["targetId"]
    assert item["targetType"] == SEED_POST["targetType"]
    assert item["user"] == "test.user@hackney.gov.uk"
    assert item["message"] == SEED_POST["message"]
    assert item["templateId"] == template
    assert item["requireAction"] is True  # the seed's "true"
    assert item["personalisationParams"] == SEED_POST["personalisationParams"]
    assert (item["isReadStatus"], item["isRemovable"]) == (False, True)
    assert item["sentMessageDetails"] is None  # nothing but the screen
    assert item["email"] is None and item["mobileNumber"] is None
    message = Message.get(Message.notification == item["id"])
    assert (message.channel, message.destination) == ("inapp", "test.user@hackney.gov.uk")


def test_the_seeds_email_notification_goes_to_email(client, sender, template):
    item = created(client, sender, seed_post(notificationType="Email"))

    assert item["notificationType"] == "Email"
    assert item["email"] == "test@example.com"
    assert item["user"] is None  # not an in-app recipient: nothing of it is kept
    [sent] = item["sentMessageDetails"]
    assert (sent["type"], sent["status"]) == ("email", "created")
    assert Message.get_by_id(sent["id"]).destination == "test@example.com"


def test_the_seeds_text_notification_goes_to_the_mobile_number(
    client, sender, template, sms_configured
):
    item = created(client, sender, seed_post(notificationType="Text"))

    assert item["notificationType"] == "Text"
    assert item["mobileNumber"] == "+441234567890"  # "0123 456 7890" as E.164
    assert [sent["type"] for sent in item["sentMessageDetails"]] == ["sms"]


def test_the_seeds_letter_needs_three_address_lines(client, sender, template):
    refused = post(client, sender, seed_post(notificationType="Letter"))  # its lines are ""
    assert refused.status_code == 400
    assert list(refused.get_json()["errors"]) == ["personalisationParams"]

    item = created(
        client, sender, seed_post(notificationType="Letter", personalisationParams=ADDRESS)
    )
    assert item["notificationType"] == "Letter"
    [letter] = Message.select().where(Message.notification == item["id"])
    assert letter.destination == "Joe Bloggs\n1 Hillman Street\nLondon\nE8 1DY"


def test_require_flags_add_channels_to_the_same_notification(
    client, sender, template, sms_configured
):
    body = seed_post(
        requireEmailNotification=True,
        requireSmsNotification=True,
        requireLetter="true",
        personalisationParams=ADDRESS,
    )
    item = created(client, sender, body)

    assert item["notificationType"] == "Screen"
    flags = ("requireEmailNotification", "requireSmsNotification", "requireLetter")
    assert [item[flag] for flag in flags] == [True, True, True]
    assert [sent["type"] for sent in item["sentMessageDetails"]] == ["email", "sms", "letter"]
    channels = [m.channel for m in Message.select().where(Message.notification == item["id"])]
    assert sorted(channels) == ["email", "inapp", "letter", "sms"]
    assert Notification.select().count() == 1


def test_a_screen_notification_without_template_shows_the_message(client, sender):
    body = {
        "targetId": "Ida1029365-62b1-42e4-b71f-3793ac6ea48f",
        "targetType": "FailedDirectDebits",
        "notificationType": "Screen",
        "message": "Direct Debit failed",
        "personalisationParams": {"firstName": "First Name", "lastName": "Last Name"},
    }
    item = created(client, sender, body)

    # As the seed's GET shows it: no user (filed under the target), no key, no template.
    assert (item["user"], item["serviceKey"], item["templateId"]) == (None, None, None)
    assert item["message"] == "Direct Debit failed"
    assert item["personalisationParams"] == body["personalisationParams"]
    inapp = Message.get(Message.notification == item["id"])
    assert inapp.destination == body["targetId"]


def test_a_notify_service_key_keeps_its_service_and_drops_its_secret(client, sender):
    service = "26785a09-ab16-4eb0-8407-a37497a57506"
    secret = "3d844edf-8d35-48ac-975b-e847b4f122b0"
    body = {"notificationType": "Screen", "user": "u-1", "message": "Hello"}
    item = created(client, sender, body | {"serviceKey": f"housing-{service}-{secret}"})
    assert item["serviceKey"] == f"housing-{service}"

    other = created(client, sender, body | {"serviceKey": "not-a-notify-key"})
    assert other["serviceKey"].startswith("sha256:")
    stored = [n.service_name for n in Notification.select()]
    assert not any(secret in name or "not-a-notify-key" in name for name in stored)


# --- validation: each rule names the Hackney field ------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"notificationType": "Email", "templateId": None}, "templateId"),
        ({"notificationType": "Text", "templateId": ""}, "templateId"),
        ({"requireEmailNotification": True, "templateId": None}, "templateId"),
        ({"notificationType": "Email", "email": None}, "email"),
        ({"requireEmailNotification": True, "email": ""}, "email"),
        ({"notificationType": "Email", "email": "not an address"}, "email"),
        ({"notificationType": "Text", "mobileNumber": None}, "mobileNumber"),
        ({"requireSmsNotification": True, "mobileNumber": "call me"}, "mobileNumber"),
        ({"requireLetter": True}, "personalisationParams"),
        ({"templateId": None, "message": None}, "message"),
        ({"user": None, "targetId": None}, "user"),
        ({"notificationType": "Fax"}, "notificationType"),
        ({"notificationType": None}, "notificationType"),
        ({"requireAction": "yes"}, "requireAction"),
        ({"requireLetter": 1}, "requireLetter"),
        ({"templateId": "no-such-template"}, "templateId"),
        ({"personalisationParams": {"lastName": "Bloggs"}}, "personalisationParams"),
        ({"targetId": "x" * 101}, "targetId"),
        ({"targetType": "x" * 101}, "targetType"),
        ({"user": "x" * 201}, "user"),
        ({"message": "x" * 10_001}, "message"),
        ({"serviceKey": "x" * 256}, "serviceKey"),
        ({"templateId": "x" * 101}, "templateId"),
        ({"email": "x" * 321}, "email"),
        ({"mobileNumber": "1" * 51}, "mobileNumber"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_rule_is_a_400_naming_the_hackney_field(
    client, sender, template, sms_configured, changes, field
):
    body, changes = seed_post(), dict(changes)
    params = changes.pop("personalisationParams", None)
    body.update(changes)
    if params is not None:
        body["personalisationParams"] = params

    response = post(client, sender, body)

    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert response.get_json()["code"] == 400
    assert Notification.select().count() == 0


def test_personalisation_too_large_is_named(client, sender, template):
    big = {"firstName": "Joe", "notes": "x" * settings.MAX_ATTRIBUTES_BYTES}
    response = post(client, sender, seed_post() | {"personalisationParams": big})
    assert response.status_code == 400
    assert "personalisationParams" in response.get_json()["errors"]


def test_an_unconfigured_channel_names_the_field_that_asked_for_it(client, sender, template):
    response = post(client, sender, seed_post(requireSmsNotification=True))  # no SMS settings
    assert response.status_code == 400
    assert "requireSmsNotification" in response.get_json()["errors"]


# --- GET ---------------------------------------------------------------------------------------
def test_listing_filters_by_notification_type_and_target(client, sender, template, sms_configured):
    screen = created(client, sender, SEED_POST)
    email = created(client, sender, seed_post(notificationType="Email"))
    both = created(
        client, sender, seed_post(notificationType="Text", requireEmailNotification=True)
    )
    elsewhere = created(client, sender, seed_post(notificationType="Email", targetId="other"))

    target = SEED_POST["targetId"]
    assert [
        i["id"] for i in listed(client, sender, notificationType="Screen", targetId=target)
    ] == [screen["id"]]
    emails = listed(client, sender, notificationType="Email", targetId=target)
    assert [i["id"] for i in emails] == [both["id"], email["id"]]  # newest first
    assert {i["id"] for i in listed(client, sender)} == {
        screen["id"],
        email["id"],
        both["id"],
        elsewhere["id"],
    }
    assert emails[0] == next(i for i in listed(client, sender) if i["id"] == both["id"])


def test_the_listing_item_is_what_post_answered(client, sender, template):
    item = created(client, sender, SEED_POST)
    [again] = listed(client, sender, notificationType="Screen", targetId=SEED_POST["targetId"])
    assert again == item


def test_listing_is_paginated_and_bounded(client, sender):
    for number in range(3):
        created(
            client, sender, {"notificationType": "Screen", "user": "u", "message": f"m{number}"}
        )
    response = client.get(
        f"{BASE}/notifications", query_string={"pageSize": 2, "page": 2}, headers=sender.headers
    )
    assert [item["message"] for item in response.get_json()] == ["m0"]
    assert json.loads(response.headers["X-Pagination"])["total"] == 3
    too_big = client.get(
        f"{BASE}/notifications", query_string={"pageSize": 201}, headers=sender.headers
    )
    assert too_big.status_code == 400 and "pageSize" in too_big.get_json()["errors"]
    bad_type = client.get(
        f"{BASE}/notifications", query_string={"notificationType": "Fax"}, headers=sender.headers
    )
    assert bad_type.status_code == 400 and "notificationType" in bad_type.get_json()["errors"]


def test_a_page_is_read_in_a_fixed_number_of_queries(client, sender, template, db, monkeypatch):
    def count_queries(page_size: int) -> int:
        statements: list[str] = []
        original = db.execute_sql
        with monkeypatch.context() as patched:
            patched.setattr(
                db,
                "execute_sql",
                lambda sql, *a, **k: statements.append(sql) or original(sql, *a, **k),
            )
            listed(client, sender, pageSize=page_size)
        return len(statements)

    for _ in range(4):
        item = created(client, sender, seed_post(requireEmailNotification=True))
        client.patch(
            f"{BASE}/notifications/{item['id']}",
            json={"id": item["id"], "actionType": "Approved"},
            headers=sender.headers,
        )
    assert count_queries(1) == count_queries(4)


# --- PATCH and DELETE --------------------------------------------------------------------------
def test_the_seeds_patch_records_the_action_and_is_read_sets_the_status(client, sender, template):
    item = created(client, sender, SEED_POST)
    url = f"{BASE}/notifications/{item['id']}"
    body = SEED_PATCH | {"id": item["id"]}  # the seed's id is an example; it must be the path's

    response = client.patch(url, json=body, headers=sender.headers)

    assert response.status_code == 200, response.get_json()
    answered = response.get_json()
    assert_item_shape(answered)
    assert answered["isReadStatus"] is True
    assert (answered["performedActionType"], answered["actionNote"]) == ("IsRead", "")
    approved = client.patch(
        url,
        json={
            "id": item["id"],
            "actionType": "Approved",
            "actionNote": "Checked the ledger",
            "performedActionDoneBy": "officer.one@hackney.gov.uk",
        },
        headers=sender.headers,
    ).get_json()
    assert approved["isReadStatus"] is True  # stays read
    assert approved["performedActionType"] == "Approved"
    assert approved["actionNote"] == "Checked the ledger"
    assert approved["performedActionDoneBy"] == "officer.one@hackney.gov.uk"
    assert HACKNEY_TIME.match(approved["performedActionDate"])
    trail = NotificationAction.select().where(NotificationAction.notification == item["id"])
    assert [action.action_type for action in trail.order_by(NotificationAction.id)] == [
        "IsRead",
        "Approved",
    ]


def test_a_patch_may_leave_the_id_out(client, sender):
    item = created(client, sender, {"notificationType": "Screen", "user": "u", "message": "m"})
    response = client.patch(
        f"{BASE}/notifications/{item['id']}",
        json={"actionType": "Validate"},
        headers=sender.headers,
    )
    assert response.status_code == 200
    assert response.get_json()["performedActionType"] == "Validate"


def test_screen_personalisation_without_template_is_limited_to_4kb(client, sender):
    body = {"notificationType": "Screen", "user": "u", "message": "m"}
    response = post(client, sender, body | {"personalisationParams": {"notes": "x" * 5000}})
    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == ["personalisationParams"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "7e6041e2-01b6-4c41-9ccd-5b0932616b50", "actionType": "IsRead"}, "id"),
        ({"id": "not-a-guid", "actionType": "IsRead"}, "id"),
        ({"id": None, "actionType": "Maybe"}, "actionType"),
        ({"id": None, "actionType": "IsRead", "actionNote": "x" * 2001}, "actionNote"),
        (
            {"id": None, "actionType": "IsRead", "performedActionDoneBy": "x" * 201},
            "performedActionDoneBy",
        ),
    ],
)
def test_a_bad_patch_is_a_400_naming_the_field(client, sender, body, field):
    item = created(client, sender, {"notificationType": "Screen", "user": "u", "message": "m"})
    if body.get("id", "") is None:
        body = body | {"id": item["id"]}
    response = client.patch(f"{BASE}/notifications/{item['id']}", json=body, headers=sender.headers)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]
    assert NotificationAction.select().count() == 0


def test_delete_is_herald_soft_delete(client, sender, template):
    item = created(client, sender, seed_post(notificationType="Email"))
    url = f"{BASE}/notifications/{item['id']}"

    assert client.delete(url, headers=sender.headers).status_code == 204

    assert listed(client, sender) == []
    notification = Notification.get_by_id(item["id"])
    assert notification.deleted_at is not None  # kept for audit
    assert Message.get(Message.notification == item["id"]).state == MessageState.CANCELLED
    assert client.delete(url, headers=sender.headers).status_code == 409
    patched = client.patch(
        url, json={"id": item["id"], "actionType": "IsRead"}, headers=sender.headers
    )
    assert patched.status_code == 409


# --- isolation, idempotency --------------------------------------------------------------------
def test_another_senders_notifications_and_messages_are_404_everywhere(
    client, sender, other_sender, template
):
    item = created(client, sender, seed_post(requireEmailNotification=True))
    [sent] = item["sentMessageDetails"]
    url = f"{BASE}/notifications/{item['id']}"

    assert listed(client, other_sender) == []
    patch = {"id": item["id"], "actionType": "IsRead"}
    assert client.patch(url, json=patch, headers=other_sender.headers).status_code == 404
    assert client.delete(url, headers=other_sender.headers).status_code == 404
    status = f"{BASE}/message-status/housing/{sent['id']}"
    assert client.get(status, headers=other_sender.headers).status_code == 404
    assert client.get(status, headers=sender.headers).status_code == 200
    assert Notification.get_by_id(item["id"]).deleted_at is None
    assert NotificationAction.select().count() == 0


def test_requests_need_an_api_key(client):
    assert client.get(f"{BASE}/notifications").status_code == 401
    assert client.post(f"{BASE}/notifications", json=SEED_POST).status_code == 401


def test_idempotency_key_replays_the_first_answer(client, sender, template):
    first = post(client, sender, SEED_POST, **{"Idempotency-Key": "hackney-1"})
    again = post(client, sender, SEED_POST, **{"Idempotency-Key": "hackney-1"})
    other = post(client, sender, seed_post(message="Else"), **{"Idempotency-Key": "hackney-1"})

    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert other.status_code == 422
    assert Notification.select().count() == 1


# --- properties --------------------------------------------------------------------------------
_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40
)
_flag = st.one_of(st.booleans(), st.sampled_from(["true", "false", "True", "FALSE"]))


@given(
    user=_text.filter(str.isprintable),
    message=_text,
    target=st.one_of(st.none(), _text),
    action=_flag,
    params=st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _text, max_size=4),
)
@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
def test_any_valid_screen_notification_is_201_in_the_seeds_shape(
    client, sender, user, message, target, action, params
):
    body = {
        "notificationType": "Screen",
        "user": user,
        "message": message,
        "targetId": target,
        "requireAction": action,
        "personalisationParams": params,
    }
    item = created(client, sender, body)
    assert (item["message"], item["targetId"]) == (message, target)
    assert item["requireAction"] is (action is True or str(action).lower() == "true")
    assert item["personalisationParams"] == (params or None)


_fields = st.sampled_from(sorted(set(SEED_POST) - {"personalisationParams"}))
_junk = st.one_of(st.integers(), st.lists(st.integers(), max_size=2), st.just("x" * 10_001))


@given(field=_fields, junk=_junk)
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
def test_a_wrong_value_is_a_400_naming_its_field(client, sender, field, junk):
    body = seed_post(notificationType="Email") | {field: junk}
    response = post(client, sender, body)
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["errors"]
