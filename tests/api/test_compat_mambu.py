"""The Mambu dialect (seed ``001``) under /compat/mambu: every request the seed shows, sent
verbatim, answered in Mambu's shape against real data; states, filters, pagination, errors,
isolation between senders, privacy and retention as on /v1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from api.compat.mambu_schemas import MAMBU_STATE
from models.base import utcnow
from models.states import MessageState
from scheduler.jobs import purge
from settings import settings
from tests.factories import idnp, make_sender, message, stored_message
from tests.support import settled, wait_until

SEARCH = "/compat/mambu/api/notifications/messages/search"
MESSAGES = "/compat/mambu/api/notifications/messages"
RESEND = "resend_failed"

# --- the seed's requests, verbatim ---------------------------------------------------------
SEED_LOAN_CREATED = {
    "filterConstraints": [
        {"filterSelection": "EVENT", "filterElement": "EQUALS", "value": "LOAN_CREATED"}
    ]
}
SEED_FAILED_WEBHOOKS = {
    "filterConstraints": [
        {"filterSelection": "TYPE", "filterElement": "EQUALS", "value": "WEB_HOOK"},
        {"filterSelection": "STATE", "filterElement": "EQUALS", "value": "FAILED"},
    ]
}
SEED_USER_SENT = {
    "filterConstraints": [
        {
            "filterSelection": "RECIPIENT_USER_KEY",
            "filterElement": "EQUALS",
            "value": "40288011560e37a701560e3aef030483",
        },
        {"filterSelection": "STATE", "filterElement": "EQUALS", "value": "SENT"},
    ]
}
SEED_RESPONSE = [
    {
        "encodedKey": "8a0991f14de54ed1014de768d4a40c18",
        "creationDate": "2015-06-12T10:55:16+0000",
        "sendDate": "2015-06-12T10:55:17+0000",
        "type": "WEB_HOOK",
        "state": "SENT",
        "destination": "http://requestb.in/r0sdq1r0",
        "event": "LOAN_CREATED",
        "body": "Demo body content",
    },
    {
        "encodedKey": "8a09babc4d9d34b9014d9f35a9580530",
        "creationDate": "2015-05-29T10:26:43+0000",
        "sendDate": "2015-05-29T10:26:44+0000",
        "type": "WEB_HOOK",
        "state": "SENT",
        "destination": "https://example.com/webhook",
        "event": "LOAN_CREATED",
        "body": "Demo body content",
    },
]
SEED_RESEND_ONE = {"action": "resend", "identifiers": ["8a80808a5317de22015317de5b94034c"]}
SEED_RESEND_BULK = {
    "action": "resend",
    "identifiers": [
        "8a80808a5317de22015317de5b94034c",
        "8a80806852f38c860152f38de0ad0019",
        "8a80806852f38c860152f38de0ad0023",
    ],
}
SUCCESS = {"returnCode": 200, "returnStatus": "SUCCESS"}


def search(client, who, body, query=""):
    return client.post(SEARCH + query, json=body, headers=who.headers)


def constraint(selection, element, **operands) -> dict:
    return {"filterSelection": selection, "filterElement": element, **operands}


def keys(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["encodedKey"] for item in response.get_json()]


def refused(response, status=400) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert {"returnCode", "returnStatus", "message"} <= set(body)
    return body


def mambu_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


@pytest.fixture
def resender(db):
    return make_sender("lender", permissions=[RESEND])


def test_seed_search_by_event_answers_the_seeds_response(client, sender, other_sender):
    for item in SEED_RESPONSE:
        stored_message(
            sender.sender,
            id=UUID(item["encodedKey"]),
            created_at=mambu_time(item["creationDate"]),
            sent_at=mambu_time(item["sendDate"]),
            updated_at=utcnow(),
            channel="webhook",
            destination=item["destination"],
            event="LOAN_CREATED",
            body="Demo body content",
        )
    stored_message(sender.sender, event="LOAN_REPAID", channel="webhook")
    stored_message(other_sender.sender, event="LOAN_CREATED", channel="webhook")

    response = search(client, sender, SEED_LOAN_CREATED)

    assert response.status_code == 200
    answer = response.get_json()
    assert [{key: item[key] for key in SEED_RESPONSE[0]} for item in answer] == SEED_RESPONSE
    assert (
        answer[0]
        | {
            "failureReason": None,
            "failureCause": None,
            "subject": None,
            "numRetries": 0,
            "referenceId": None,
        }
        == answer[0]
    )


def test_seed_search_for_failed_webhooks(client, sender, other_sender):
    now = utcnow()
    failed = stored_message(
        sender.sender,
        channel="webhook",
        state="failed",
        failure_reason="REJECTED_BY_PROVIDER",
        last_error="HTTP 500 from https://hooks.example.md/in",
        attempts=3,
        created_at=now - timedelta(minutes=2),
    )
    cancelled = stored_message(
        sender.sender, channel="webhook", state="cancelled", created_at=now - timedelta(minutes=1)
    )
    stored_message(sender.sender, channel="webhook", state="sent")
    stored_message(sender.sender, channel="email", state="failed")
    stored_message(other_sender.sender, channel="webhook", state="failed")

    response = search(client, sender, SEED_FAILED_WEBHOOKS)

    assert keys(response) == [cancelled.id.hex, failed.id.hex]
    newest, oldest = response.get_json()
    assert (newest["state"], newest["failureReason"]) == ("FAILED", "CANCELLED")
    assert (oldest["type"], oldest["state"], oldest["failureReason"]) == (
        "WEB_HOOK",
        "FAILED",
        "REJECTED_BY_PROVIDER",
    )
    assert (oldest["failureCause"], oldest["numRetries"], oldest["sendDate"]) == (
        "HTTP 500 from https://hooks.example.md/in",
        2,
        None,
    )


def test_seed_search_for_a_users_sent_messages(client, sender, other_sender):
    user = "40288011560e37a701560e3aef030483"
    inbox = [
        stored_message(
            sender.sender, channel="inapp", destination=user, recipient_key=user, state=s
        )
        for s in ("unread", "read", "sent")
    ]
    stored_message(
        sender.sender, channel="inapp", destination=user, recipient_key=user, state="queued"
    )
    stored_message(sender.sender, channel="inapp", destination="u-2", recipient_key="u-2")
    stored_message(other_sender.sender, channel="inapp", destination=user, recipient_key=user)

    response = search(client, sender, SEED_USER_SENT)

    assert sorted(keys(response)) == sorted(m.id.hex for m in inbox)
    assert {(item["type"], item["state"]) for item in response.get_json()} == {("IN_APP", "SENT")}


def test_seed_resend_of_one_failed_message_delivers_it(client, resender, smtp, worker):
    [key] = SEED_RESEND_ONE["identifiers"]
    failed = stored_message(
        resender.sender, id=UUID(key), state="failed", failure_reason="RETRIES_EXHAUSTED"
    )

    response = client.post(MESSAGES, json=SEED_RESEND_ONE, headers=resender.headers)

    assert response.status_code == 200
    assert response.get_json() == SUCCESS
    wait_until(settled(failed.id, "sent"))
    assert len(smtp.received) == 1
    [item] = search(
        client, resender, {"filterConstraints": [constraint("ENCODED_KEY", "EQUALS", value=key)]}
    ).get_json()
    assert (item["state"], item["failureReason"]) == ("SENT", None)


def test_seed_bulk_resend_puts_every_message_back_to_the_queue(client, resender, queues):
    for key in SEED_RESEND_BULK["identifiers"]:
        stored_message(resender.sender, id=UUID(key), state="failed", failure_reason="DEAD_ADDRESS")

    response = client.post(MESSAGES, json=SEED_RESEND_BULK, headers=resender.headers)

    assert response.get_json() == SUCCESS
    assert {message(UUID(k)).state for k in SEED_RESEND_BULK["identifiers"]} == {"queued"}
    assert queues.client.llen("dramatiq:email") == 3


def test_duplicated_keys_and_messages_not_failed_refuse_the_whole_resend(
    client, resender, other_sender
):
    failed = stored_message(resender.sender, state="failed")
    sent = stored_message(resender.sender, state="sent")
    theirs = stored_message(other_sender.sender, state="failed")
    identifiers = [failed.id.hex, str(failed.id), sent.id.hex, theirs.id.hex]

    body = refused(
        client.post(
            MESSAGES,
            json={"action": "resend", "identifiers": identifiers},
            headers=resender.headers,
        )
    )

    assert (body["returnCode"], body["returnStatus"]) == (4, "INVALID_PARAMETERS")
    assert body["errorSource"] == "identifiers[1]"
    assert body["errors"]["identifiers"] == {
        "1": ["Duplicate of identifiers[0]."],
        "2": ["Not failed: sent."],
        "3": ["No such message."],
    }
    assert message(failed.id).state == "failed"
    assert message(theirs.id).state == "failed"


def test_resend_needs_the_resend_failed_permission(client, sender):
    failed = stored_message(sender.sender, state="failed")
    body = refused(
        client.post(
            MESSAGES,
            json={"action": "resend", "identifiers": [failed.id.hex]},
            headers=sender.headers,
        ),
        403,
    )
    assert (body["returnCode"], body["returnStatus"]) == (15, "INVALID_PERMISSIONS")
    assert message(failed.id).state == "failed"


@pytest.mark.parametrize(
    "body",
    [
        {"action": "delete", "identifiers": ["8a80808a5317de22015317de5b94034c"]},
        {"action": "resend", "identifiers": []},
        {"action": "resend"},
        {"identifiers": ["8a80808a5317de22015317de5b94034c"]},
        {"action": "resend", "identifiers": ["x"] * 1001},
    ],
)
def test_malformed_resends_are_invalid_parameters(client, resender, body):
    answer = refused(client.post(MESSAGES, json=body, headers=resender.headers))
    assert answer["returnCode"] == 4


# --- states and fields ---------------------------------------------------------------------
def test_every_herald_state_is_shown_and_found_as_its_mambu_state(client, sender):
    rows = {state: stored_message(sender.sender, state=state) for state in MessageState}

    for state, row in rows.items():
        by_key = {"filterConstraints": [constraint("ENCODED_KEY", "EQUALS", value=row.id.hex)]}
        [item] = search(client, sender, by_key).get_json()
        assert item["state"] == MAMBU_STATE[state]
        by_state = {"filterConstraints": [constraint("STATE", "EQUALS", value=item["state"])]}
        assert row.id.hex in keys(search(client, sender, by_state))
    for mambu in ("SENT", "QUEUED", "WAITING", "SENDING_ASYNC", "FAILED", "QUEUED_FOR_STREAM"):
        expected = {rows[s].id.hex for s, shown in MAMBU_STATE.items() if shown == mambu}
        body = {"filterConstraints": [constraint("STATE", "IN", values=[mambu.lower()])]}
        assert set(keys(search(client, sender, body))) == expected, mambu


def test_failure_reasons_are_found_as_shown(client, sender):
    dead = stored_message(sender.sender, state="failed", failure_reason="DEAD_ADDRESS")
    expired = stored_message(sender.sender, state="expired")
    cancelled = stored_message(sender.sender, state="cancelled")
    sent = stored_message(sender.sender, state="sent")

    def found(element, **operands):
        body = {"filterConstraints": [constraint("FAILURE_REASON", element, **operands)]}
        return set(keys(search(client, sender, body)))

    assert found("EQUALS", value="DEAD_ADDRESS") == {dead.id.hex}
    assert found("IN", values=["EXPIRED", "CANCELLED"]) == {expired.id.hex, cancelled.id.hex}
    assert found("NOT_EMPTY") == {dead.id.hex, expired.id.hex, cancelled.id.hex}
    assert found("EMPTY") == {sent.id.hex}
    body = refused(
        search(
            client,
            sender,
            {"filterConstraints": [constraint("FAILURE_REASON", "EQUALS", value="SMS_TOO_LONG")]},
        )
    )
    assert body["errorSource"] == "filterConstraints[0].value"


def test_encoded_keys_are_taken_with_or_without_dashes(client, sender):
    row = stored_message(sender.sender)
    for key in (row.id.hex, str(row.id), row.id.hex.upper()):
        body = {"filterConstraints": [constraint("ENCODED_KEY", "IN", values=[key])]}
        assert keys(search(client, sender, body)) == [row.id.hex]


def test_recipient_client_key_is_the_persons_idnp(client, sender):
    person = idnp(5)
    theirs = stored_message(
        sender.sender, recipient_key=person, destination=person, channel="inapp"
    )
    stored_message(sender.sender, recipient_key=idnp(6), destination=idnp(6), channel="inapp")
    body = {"filterConstraints": [constraint("RECIPIENT_CLIENT_KEY", "EQUALS", value=person)]}
    assert keys(search(client, sender, body)) == [theirs.id.hex]


def test_groups_and_custom_fields_are_refused_naming_the_constraint(client, sender):
    body = refused(
        search(
            client,
            sender,
            {
                "filterConstraints": [
                    constraint("TYPE", "EQUALS", value="SMS"),
                    constraint(
                        "RECIPIENT_GROUP_KEY", "EQUALS", value="8a0991f14de54ed1014de768d4a40c18"
                    ),
                ]
            },
        )
    )
    assert body["errorSource"] == "filterConstraints[1].filterSelection"
    assert "no groups" in body["errors"]["filterConstraints"]["1"]["filterSelection"][0]
    custom = constraint(
        "8a0991f14de54ed1014de768d4a40c18", "EQUALS", value="x", dataFieldType="CUSTOM"
    )
    body = refused(search(client, sender, {"filterConstraints": [custom]}))
    assert body["errorSource"] == "filterConstraints[0].dataFieldType"
    native = constraint(
        "TYPE", "EQUALS", value="SMS", dataFieldType="NATIVE", dataItemType="NOTIFICATION_MESSAGE"
    )
    assert search(client, sender, {"filterConstraints": [native]}).status_code == 200


def test_sender_key_is_an_admins_filter(client, sender, admin):
    row = stored_message(sender.sender)
    by_sender = {
        "filterConstraints": [constraint("SENDER_KEY", "EQUALS", value=str(sender.sender.id))]
    }
    body = refused(search(client, sender, by_sender), 403)
    assert (body["returnCode"], body["returnStatus"]) == (15, "INVALID_PERMISSIONS")
    assert keys(search(client, admin, by_sender)) == [row.id.hex]


SAMPLES = {
    "KEY": "8a0991f14de54ed1014de768d4a40c18",
    "STATE": "SENT",
    "FAILURE_REASON": "DEAD_ADDRESS",
    "TYPE": "EMAIL",
    "DATE": "2015-06-12",
    "STRING": "LOAN_CREATED",
}
SELECTIONS = {
    # selection: (sample, the elements it takes)
    "RECIPIENT_CLIENT_KEY": ("STRING", {"EQUALS", "STARTS_WITH", "IN", "EMPTY", "NOT_EMPTY"}),
    "RECIPIENT_USER_KEY": ("STRING", {"EQUALS", "STARTS_WITH", "IN", "EMPTY", "NOT_EMPTY"}),
    "RECIPIENT_GROUP_KEY": ("KEY", set()),
    "ENCODED_KEY": ("KEY", {"EQUALS", "IN", "EMPTY", "NOT_EMPTY"}),
    "CREATION_DATE": (
        "DATE",
        {"BETWEEN", "ON", "AFTER", "BEFORE", "TODAY", "THIS_WEEK", "THIS_MONTH", "THIS_YEAR"}
        | {"LAST_DAYS", "EMPTY", "NOT_EMPTY"},
    ),
    "STATE": ("STATE", {"EQUALS", "IN", "EMPTY", "NOT_EMPTY"}),
    "FAILURE_REASON": ("FAILURE_REASON", {"EQUALS", "IN", "EMPTY", "NOT_EMPTY"}),
    "DESTINATION": ("STRING", {"EQUALS", "STARTS_WITH", "EMPTY", "NOT_EMPTY"}),
    "TYPE": ("TYPE", {"EQUALS", "IN", "EMPTY", "NOT_EMPTY"}),
    "EVENT": ("STRING", {"EQUALS", "STARTS_WITH", "IN", "EMPTY", "NOT_EMPTY"}),
}
SELECTIONS["SENT_DATE"] = SELECTIONS["CREATION_DATE"]
ELEMENTS = [
    "EQUALS", "MORE_THAN", "LESS_THAN", "BETWEEN", "ON", "AFTER", "BEFORE", "STARTS_WITH", "IN",
    "TODAY", "THIS_WEEK", "THIS_MONTH", "THIS_YEAR", "LAST_DAYS", "EMPTY", "NOT_EMPTY",
]  # fmt: skip
NO_VALUE = {"TODAY", "THIS_WEEK", "THIS_MONTH", "THIS_YEAR", "EMPTY", "NOT_EMPTY"}


def operands(element: str, sample) -> dict:
    if element in NO_VALUE:
        return {}
    if element == "IN":
        return {"values": [sample]}
    if element == "BETWEEN":
        return {"value": sample, "secondValue": sample}
    if element == "LAST_DAYS":
        return {"value": 7}
    return {"value": sample}


@pytest.mark.parametrize("selection", sorted(SELECTIONS))
def test_every_filter_selection_and_element_is_taken_or_refused(client, sender, selection):
    stored_message(sender.sender, event="LOAN_CREATED")
    kind, taken = SELECTIONS[selection]
    for element in ELEMENTS:
        body = {
            "filterConstraints": [
                constraint(selection, element, **operands(element, SAMPLES[kind]))
            ]
        }
        response = search(client, sender, body)
        if element in taken:
            assert response.status_code == 200, (element, response.get_json())
            assert isinstance(response.get_json(), list)
        else:
            answer = refused(response)
            field = "filterSelection" if selection == "RECIPIENT_GROUP_KEY" else "filterElement"
            assert answer["errorSource"] == f"filterConstraints[0].{field}", (element, answer)


@pytest.mark.parametrize(
    ("bad", "source"),
    [
        (constraint("COLOUR", "EQUALS", value="red"), "filterSelection"),
        (constraint("STATE", "EQUALS"), "value"),
        (constraint("STATE", "EQUALS", value="DELIVERED"), "value"),
        (constraint("STATE", "IN", value="SENT"), "value"),
        (constraint("STATE", "IN", values=[]), "values"),
        (constraint("CREATION_DATE", "BETWEEN", value="2015-06-12"), "secondValue"),
        (constraint("CREATION_DATE", "ON", value="12/06/2015"), "value"),
        (constraint("EVENT", "IN", values=[7]), "values"),
        (constraint("TYPE", "EQUALS", value="FAX"), "value"),
        (constraint("TYPE", "EQUALS", value="SMS", colour="red"), "colour"),
    ],
)
def test_bad_constraints_are_400_naming_the_field(client, sender, bad, source):
    body = refused(
        search(
            client, sender, {"filterConstraints": [constraint("TYPE", "EQUALS", value="SMS"), bad]}
        )
    )
    assert (body["returnCode"], body["returnStatus"]) == (4, "INVALID_PARAMETERS")
    assert body["errorSource"] == f"filterConstraints[1].{source}"


def test_mambu_dates_are_taken_as_values(client, sender):
    row = stored_message(sender.sender, created_at=datetime(2015, 6, 12, 10, 55, 16, tzinfo=UTC))
    body = {
        "filterConstraints": [
            constraint(
                "CREATION_DATE",
                "BETWEEN",
                value="2015-06-12T10:55:00+0000",
                secondValue="2015-06-12T10:56:00+0000",
            )
        ]
    }
    assert keys(search(client, sender, body)) == [row.id.hex]


# --- pagination ----------------------------------------------------------------------------
def test_offset_and_limit_page_newest_first(client, sender):
    start = utcnow() - timedelta(hours=1)
    rows = [
        stored_message(sender.sender, created_at=start + timedelta(minutes=i)) for i in range(5)
    ]
    newest_first = [row.id.hex for row in reversed(rows)]

    assert keys(search(client, sender, {})) == newest_first
    assert keys(search(client, sender, {}, "?offset=1&limit=2")) == newest_first[1:3]
    assert keys(search(client, sender, {}, "?offset=4&limit=1000")) == newest_first[4:]
    assert keys(search(client, sender, {}, "?limit=0")) == []
    detailed = search(client, sender, {}, "?offset=1&limit=2&paginationDetails=ON")
    assert (detailed.headers["Items-Offset"], detailed.headers["Items-Limit"]) == ("1", "2")
    assert detailed.headers["Items-Total"] == "5"
    assert "Items-Total" not in search(client, sender, {}).headers


def test_limit_defaults_to_fifty(client, sender):
    for _ in range(51):
        stored_message(sender.sender)
    assert len(keys(search(client, sender, {}))) == 50


@pytest.mark.parametrize(
    ("query", "code", "status"),
    [
        ("?offset=first", 11, "INVALID_PAGINATION_OFFSET_VALUE"),
        ("?offset=-1", 12, "OUT_OF_BOUNDS_PAGINATION_OFFSET_VALUE"),
        ("?limit=many", 13, "INVALID_PAGINATION_LIMIT_VALUE"),
        ("?limit=1001", 14, "OUT_OF_BOUNDS_PAGINATION_LIMIT_VALUE"),
        ("?limit=-5", 14, "OUT_OF_BOUNDS_PAGINATION_LIMIT_VALUE"),
    ],
)
def test_bad_pagination_answers_mambus_codes(client, sender, query, code, status):
    body = refused(search(client, sender, {}, query))
    assert (body["returnCode"], body["returnStatus"]) == (code, status)
    assert body["errorSource"] == query[1:].partition("=")[0]


# --- errors --------------------------------------------------------------------------------
def test_errors_are_in_mambus_shape(client, sender):
    no_key = client.post(SEARCH, json={})
    assert no_key.status_code == 401
    assert no_key.get_json()["returnCode"] == 2
    assert no_key.headers["WWW-Authenticate"].startswith("Bearer")
    bad_key = client.post(SEARCH, json={}, headers={"Authorization": "Bearer nope"})
    assert (bad_key.status_code, bad_key.get_json()["returnStatus"]) == (401, "INVALID_CREDENTIALS")
    unknown = client.post("/compat/mambu/api/loans", json={}, headers=sender.headers)
    assert (unknown.status_code, unknown.get_json()["returnCode"]) == (404, 3)
    wrong_method = client.get(SEARCH, headers=sender.headers)
    assert (wrong_method.status_code, wrong_method.get_json()["returnCode"]) == (405, 5)
    not_json = client.post(SEARCH, data="filterConstraints", headers=sender.headers)
    assert (not_json.status_code, not_json.get_json()["returnCode"]) == (415, 4)
    bad = search(client, sender, {"filterConstraints": [constraint("STATE", "EQUALS", value="X")]})
    assert bad.get_json() == {
        "returnCode": 4,
        "returnStatus": "INVALID_PARAMETERS",
        "errorSource": "filterConstraints[0].value",
        "code": 400,
        "status": "Bad Request",
        "message": "The request is not valid; see errors.",
        "errors": {
            "filterConstraints": {
                "0": {
                    "value": [
                        "STATE must be one of: SENT, QUEUED, QUEUED_FOR_STREAM, WAITING, "
                        "SENDING_ASYNC, FAILED."
                    ]
                }
            }
        },
    }
    v1 = client.post("/v1/messages/search", json={"colour": 1}, headers=sender.headers)
    assert set(v1.get_json()) == {"code", "status", "message", "errors"}


# --- promises ------------------------------------------------------------------------------
def test_another_senders_messages_never_appear(client, sender, other_sender, admin):
    own = stored_message(sender.sender, event="LOAN_CREATED")
    theirs = stored_message(other_sender.sender, event="LOAN_CREATED")
    by_key = {"filterConstraints": [constraint("ENCODED_KEY", "EQUALS", value=theirs.id.hex)]}
    assert keys(search(client, sender, SEED_LOAN_CREATED)) == [own.id.hex]
    assert keys(search(client, sender, by_key)) == []
    assert set(keys(search(client, admin, SEED_LOAN_CREATED))) == {own.id.hex, theirs.id.hex}


def test_past_retention_content_is_null_and_the_state_remains(client, sender):
    final = utcnow() - timedelta(days=settings.MESSAGE_RETENTION_DAYS + 1)
    old = stored_message(
        sender.sender,
        created_at=final - timedelta(days=1),
        updated_at=final,
        state="failed",
        failure_reason="REJECTED_BY_PROVIDER",
        last_error="550 rejected ion@example.md",
        provider_id="p-1",
        subject="Old",
        body="Old body",
    )
    by_key = {"filterConstraints": [constraint("ENCODED_KEY", "EQUALS", value=old.id.hex)]}
    for _ in ("before the purge", "after it"):
        [item] = search(client, sender, by_key).get_json()
        assert (item["state"], item["failureReason"]) == ("FAILED", "REJECTED_BY_PROVIDER")
        for field in ("destination", "subject", "body", "failureCause", "referenceId"):
            assert item[field] is None, field
        purge()
    gone = {"filterConstraints": [constraint("DESTINATION", "EQUALS", value="ion@example.md")]}
    assert keys(search(client, sender, gone)) == []


def test_registry_addresses_are_masked_without_contacts_read(client, sender, db):
    person = idnp(9)
    found = stored_message(
        sender.sender,
        recipient_key=person,
        destination="ion.popescu@example.md",
        last_error="550 no mailbox ion.popescu@example.md",
        state="failed",
    )
    by_key = {"filterConstraints": [constraint("ENCODED_KEY", "EQUALS", value=found.id.hex)]}
    [item] = search(client, sender, by_key).get_json()
    assert item["destination"] == "i***@example.md"
    assert "ion.popescu" not in item["failureCause"]
    by_address = {
        "filterConstraints": [constraint("DESTINATION", "EQUALS", value="ion.popescu@example.md")]
    }
    assert keys(search(client, sender, by_address)) == []
    reader = make_sender("reader", permissions=["contacts:read"])
    theirs = stored_message(
        reader.sender, recipient_key=person, destination="ion.popescu@example.md"
    )
    [item] = search(client, reader, by_address).get_json()
    assert (item["encodedKey"], item["destination"]) == (theirs.id.hex, "ion.popescu@example.md")


# --- properties ----------------------------------------------------------------------------
VALID = st.one_of(
    st.builds(
        lambda v: constraint("TYPE", "EQUALS", value=v),
        st.sampled_from(["EMAIL", "SMS", "WEB_HOOK", "IN_APP", "webhook"]),
    ),
    st.builds(
        lambda v: constraint("STATE", "IN", values=v),
        st.lists(st.sampled_from(list(MAMBU_STATE.values())), min_size=1, max_size=3),
    ),
    st.builds(
        lambda v: constraint("EVENT", "STARTS_WITH", value=v),
        st.sampled_from(["LOAN", "L", "SAVINGS_"]),
    ),
    st.builds(
        lambda v: constraint("FAILURE_REASON", "EQUALS", value=v),
        st.sampled_from(["DEAD_ADDRESS", "CANCELLED", "EXPIRED"]),
    ),
    st.builds(
        lambda e: constraint("CREATION_DATE", e),
        st.sampled_from(["TODAY", "THIS_WEEK", "THIS_YEAR", "NOT_EMPTY"]),
    ),
    st.builds(lambda d: constraint("SENT_DATE", "LAST_DAYS", value=d), st.integers(1, 400)),
    st.builds(lambda e: constraint("DESTINATION", e), st.sampled_from(["EMPTY", "NOT_EMPTY"])),
)


@pytest.fixture
def history(sender, other_sender):
    """Messages of both senders in several states, channels and events."""
    rows: dict[str, set[str]] = {"own": set(), "theirs": set()}
    for who, name in ((sender, "own"), (other_sender, "theirs")):
        for i, (state, channel) in enumerate(
            [("sent", "email"), ("failed", "webhook"), ("cancelled", "sms"), ("read", "inapp")]
        ):
            row = stored_message(
                who.sender,
                state=state,
                channel=channel,
                event=["LOAN_CREATED", "SAVINGS_DEPOSIT"][i % 2],
                failure_reason="DEAD_ADDRESS" if state == "failed" else None,
                sent_at=utcnow() if state == "sent" else None,
            )
            rows[name].add(row.id.hex)
    return rows


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(constraints=st.lists(VALID, max_size=4))
def test_any_valid_constraints_answer_only_the_callers_messages(
    client, sender, history, constraints
):
    response = search(client, sender, {"filterConstraints": constraints})
    assert set(keys(response)) <= history["own"]
    without_states = [
        c for c in constraints if c["filterSelection"] not in ("STATE", "FAILURE_REASON")
    ]
    v1 = client.post(
        "/v1/messages/search?pageSize=200",
        json={"filterConstraints": without_states},
        headers=sender.headers,
    )
    dialect = search(client, sender, {"filterConstraints": without_states})
    assert {UUID(item["id"]).hex for item in v1.get_json()} == set(keys(dialect))
