"""Hostile input, in one place: values at the edge of what a JSON parser, the calendar, CSV,
PostgreSQL text and an email header can take; a valid request body for every JSON endpoint;
and the helpers that walk the OpenAPI document and a body so that
``tests/api/test_hostile_input.py`` can spoil one field at a time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.factories import contact_body, idnp, visit_reminder

NUL = "\x00"
#: Escaped half of a UTF-16 pair, as JSON text (``json.dumps`` writes a lone surrogate so).
LONE_SURROGATE = "\ud800"
#: Nesting far past what Python's json recurses into (a RecursionError on an unguarded parse).
PARSER_DEPTH = 50_000
#: What str.splitlines, and so an email header, breaks a line on.
LINE_SEPARATORS = ("\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
#: Converting these to UTC overflows datetime (year 10000, year 0).
CALENDAR_EDGES = (
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999+00:00",
    "0001-01-01T00:00:00+00:00",
)
#: A day alone at the calendar's ends: the day after the last one does not exist.
EDGE_DATES = ("9999-12-31", "0001-01-01")
#: Integers no database column holds; JSON numbers json parses to non-finite floats.
HUGE_INTEGERS = (2**63, -(2**63) - 1, 10**40)
NON_FINITE = ("NaN", "Infinity", "-Infinity", "1e999")
#: An integer literal with more digits than Python converts (sys.get_int_max_str_digits).
TOO_MANY_DIGITS = "9" * 5000
LONG_TEXT = "x" * 100_000
LONG_ID = "9" * 5000

#: In the future for as long as these tests live, and within any cron limit below.
LATER = "2099-01-05T09:00:00+02:00"
#: The inbox user the examples' tokens are for.
USER = "u-hostile"
#: A failed message the resend example names (the test stores it).
FAILED_MESSAGE = "01a205c0-2cad-77b8-9d6c-5d1f7133d763"
#: Another, for the Mambu dialect's resend example (named as Mambu's 32 hex digits).
FAILED_MAMBU_MESSAGE = "01a205c02cad77b89d6c5d1f7133d764"


def _message() -> dict:
    return {
        "subject": "Programare confirmată",
        "body": "Vă așteptăm luni la ora 9:00.",
        "html": "<p>Vă așteptăm luni.</p>",
        "actionUrl": "https://example.md/programare",
        "data": {"kind": "visit"},
    }


def _notification(**extra) -> dict:
    return {
        "recipients": [
            {"type": "email", "value": "ion@example.md"},
            {"type": "user", "value": USER, "attributes": {"name": "Ion"}, "language": "ro"},
        ],
        "message": _message(),
        "serviceName": "permits",
        "event": "PERMIT_READY",
        "targetId": "P-17",
        "targetType": "permit",
        "reference": "R-17",
        **extra,
    }


def _reminder(**schedule) -> dict:
    return {"recipients": [{"type": "email", "value": "ion@example.md"}], "message": _message()} | (
        schedule
    )


def _template_write() -> dict:
    body = visit_reminder()
    del body["code"]
    return body


#: Valid bodies for each JSON operation (method, OpenAPI path), each to be accepted as it is
#: (a 2xx, or 404/409 for a resource state the test does not set up).
EXAMPLES: dict[tuple[str, str], list] = {
    ("POST", "/v1/notifications"): [
        _notification(sendAt=LATER, validTill="2099-02-01T00:00:00Z", urgent=True)
    ],
    ("PATCH", "/v1/notifications/{notification_id}"): [
        {"actionType": "Approved", "actionNote": "Aprobat", "performedBy": "ana"}
    ],
    ("POST", "/v1/notifications/{notification_id}/actions"): [
        {"actionType": "Rejected", "actionNote": "Respins", "performedBy": "ana"}
    ],
    ("POST", "/v1/messages/search"): [
        {
            "filterConstraints": [
                {"filterSelection": "STATE", "filterElement": "EQUALS", "value": "FAILED"},
                {
                    "filterSelection": "CREATION_DATE",
                    "filterElement": "BETWEEN",
                    "value": "2024-01-01",
                    "secondValue": "2099-01-01T00:00:00Z",
                },
                {"filterSelection": "TYPE", "filterElement": "IN", "values": ["email"]},
            ],
            "sortBy": "CREATION_DATE",
            "sortOrder": "ASC",
        }
    ],
    ("POST", "/v1/messages"): [{"action": "resend", "identifiers": [FAILED_MESSAGE]}],
    ("POST", "/compat/mambu/api/notifications/messages/search"): [
        {
            "filterConstraints": [
                {"filterSelection": "STATE", "filterElement": "IN", "values": ["FAILED", "SENT"]},
                {
                    "filterSelection": "CREATION_DATE",
                    "filterElement": "BETWEEN",
                    "value": "2024-01-01",
                    "secondValue": "2099-01-01T00:00:00+0000",
                    "dataFieldType": "NATIVE",
                },
                {"filterSelection": "TYPE", "filterElement": "EQUALS", "value": "EMAIL"},
            ]
        }
    ],
    ("POST", "/compat/mambu/api/notifications/messages"): [
        {"action": "resend", "identifiers": [FAILED_MAMBU_MESSAGE]}
    ],
    ("POST", "/v1/templates"): [visit_reminder(code="hostile-new")],
    ("PUT", "/v1/templates/{id_or_code}"): [_template_write()],
    ("PATCH", "/v1/templates/{id_or_code}"): [{"name": "Renamed", "description": "Altă"}],
    ("POST", "/v1/templates/{id_or_code}/preview"): [
        {"attributes": {"visitDate": LATER}, "language": "ro", "channel": "email"}
    ],
    ("POST", "/v1/contacts"): [contact_body(7)],
    ("POST", "/v1/contacts/import"): [[contact_body(8), {"idnp": idnp(9), "name": "Ana"}]],
    ("PATCH", "/v1/contacts/{idnp}"): [{"name": "Ion Popescu", "attributes": {"floor": "2"}}],
    ("PUT", "/v1/contacts/{idnp}/language"): [{"preferredLanguage": "ru"}],
    ("POST", "/v1/contacts/{idnp}/channels"): [
        {"type": "email", "address": "nou@example.md", "priority": 5}
    ],
    ("PATCH", "/v1/contacts/{idnp}/channels/{channel_id}"): [{"active": False, "priority": 7}],
    ("POST", "/v1/contacts/{idnp}/subscriptions"): [{"serviceName": "parking"}],
    ("PUT", "/v1/contacts/{idnp}/preferences"): [
        {"channels": {"sms": False}, "services": {"parking": {"email": False, "inapp": True}}}
    ],
    ("PUT", "/v1/inbox/preferences"): [
        {"channels": {"webpush": False}, "services": {"parking": {"sms": False}}}
    ],
    ("POST", "/v1/inbox/tokens"): [{"user": USER, "ttlSeconds": 600}],
    ("POST", "/v1/webhook-endpoints"): [{"url": "https://permits.example.md/herald/webhooks"}],
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate"): [{}],
    ("POST", "/v1/reminders"): [
        _reminder(at=[LATER, "2099-01-06T09:00:00Z"]),
        _reminder(cron="0 9 1 1 *", timezone="Europe/Chisinau", endAt="2090-01-01T00:00:00Z"),
        _reminder(eventAt=LATER, before=["24h", "30m"]),
    ],
    ("PATCH", "/v1/inbox/{item_id}"): [{"state": "read"}],
    ("POST", "/v1/inbox/{item_id}/actions"): [{"actionType": "IsRead", "actionNote": "Văzut"}],
    ("PUT", "/v1/inbox/push-subscription"): [
        {
            "endpoint": "https://push.example.md/push/hostile",
            "expirationTime": None,
            "keys": {
                "p256dh": "BIIanbeOWLmW3bMTT2bUc1eN9kR8wqIC5HihBeiDSf8tbbsnDZ_XD-rpkqBxKBsCtxHST"
                "sMEkf834fvzDqu4m_A",
                "auth": "REHYYYf1VNQJGkdZYUz3Ew",
            },
        }
    ],
    ("POST", "/compat/hackney/notifications"): [
        {
            "targetId": "t-1",
            "targetType": "Visits",
            "notificationType": "Email",
            "user": "officer@example.md",
            "message": "Vizită",
            "serviceKey": "housing",
            "templateId": "visit-reminder",
            "email": "ion@example.md",
            "personalisationParams": {"visitDate": LATER, "officerName": "Ana"},
            "requireAction": "true",
            "requireEmailNotification": False,
        }
    ],
    ("PATCH", "/compat/hackney/notifications/{notification_id}"): [
        {"actionType": "Approved", "actionNote": "Aprobat", "performedActionDoneBy": "ana"}
    ],
    ("POST", "/v1/providers/whatsapp/webhook"): [
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "statuses": [
                                    {
                                        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDNEQ=",
                                        "status": "delivered",
                                        "timestamp": "1767225600",
                                        "recipient_id": "37369123456",
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ],
    ("POST", "/v1/providers/viber/events"): [
        {"event": "delivered", "timestamp": 1767225600000, "message_token": 4912661846655238145}
    ],
    ("POST", "/compat/notifybc/api/notifications"): [
        {"serviceName": "permits", "isBroadcast": True, "message": {"title": "T", "body": "B"}},
        {
            "serviceName": "permits",
            "channel": "email",
            "userChannelId": "ion@example.md",
            "message": {"subject": "S", "textBody": "T", "htmlBody": "<p>T</p>"},
        },
    ],
    ("PATCH", "/compat/notifybc/api/notifications/{notification_id}"): [{"state": "deleted"}],
    ("PUT", "/compat/notifybc/api/notifications/{notification_id}"): [{"state": "deleted"}],
}

#: Valid query strings for GET operations with parameters beyond paging.
QUERY_EXAMPLES: dict[str, dict[str, str]] = {
    "/v1/notifications": {
        "serviceName": "permits",
        "state": "sent",
        "createdFrom": "2024-01-01",
        "createdTo": "2099-01-01T00:00:00Z",
        "filter": '{"where": {"event": "PERMIT_READY"}, "order": "createdAt DESC"}',
    },
    "/v1/messages/export": {
        "channel": "email",
        "createdFrom": "2024-01-01T00:00:00+02:00",
        "createdTo": "2099-01-01",
        "filterConstraints": '[{"filterSelection": "STATE", "filterElement": "EQUALS",'
        ' "value": "SENT"}]',
    },
    "/v1/templates": {"channel": "email", "language": "ro", "text": "Visit"},
    "/v1/contacts": {"channelType": "email", "language": "ro", "text": "Persoana"},
    "/compat/hackney/notifications": {"notificationType": "Email", "targetId": "t-1"},
    "/compat/notifybc/api/notifications": {
        "filter": '{"where": {"serviceName": "permits"}, "order": "created DESC", "limit": 10}'
    },
}

#: Mambu filter constraints at the calendar's edges (every one a 400 naming ``value``).
EDGE_CONSTRAINTS = [
    {"filterSelection": "CREATION_DATE", "filterElement": "AFTER", "value": "9999-12-31"},
    {"filterSelection": "CREATION_DATE", "filterElement": "BEFORE", "value": "0001-01-01"},
    {"filterSelection": "CREATION_DATE", "filterElement": "ON", "value": CALENDAR_EDGES[0]},
    {"filterSelection": "CREATION_DATE", "filterElement": "LAST_DAYS", "value": TOO_MANY_DIGITS},
    {"filterSelection": "CREATION_DATE", "filterElement": "LAST_DAYS", "value": "²"},
    {"filterSelection": "CREATION_DATE", "filterElement": "LAST_DAYS", "value": 10**30},
]


# --- walking the OpenAPI document and the examples -----------------------------------------
Path = tuple[str, ...]
PLACEHOLDER = "\ue000hostile\ue000"


def operations(spec: dict) -> Iterator[tuple[str, str, dict]]:
    """(method, path, operation) of every operation, with its path's parameters."""
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method != "parameters":
                parameters = [*shared, *operation.get("parameters", [])]
                yield method.upper(), path, operation | {"parameters": parameters}


def json_operations(spec: dict) -> Iterator[tuple[str, str, dict]]:
    """(method, path, body schema) of every operation taking a JSON body."""
    for method, path, operation in operations(spec):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            yield method, path, content["application/json"]["schema"]


def resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def schema_at(spec: dict, schema: dict, path: Path) -> dict:
    """The schema of the value at ``path`` in a body of ``schema`` ({} when free-form)."""
    for key in path:
        schema = resolve(spec, schema)
        properties = schema.get("properties", {})
        schema = schema["items"] if "items" in schema else properties.get(key, {})
    return resolve(spec, schema)


def leaves(document: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every scalar in a document, and every object (whose keys may be spoiled), by path."""
    if isinstance(document, dict):
        yield path, document
        for key, value in document.items():
            yield from leaves(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from leaves(value, (*path, str(index)))
    else:
        yield path, document


def replaced(document: Any, path: Path, value: Any) -> Any:
    """A copy of ``document`` with the value at ``path`` replaced."""
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    parent = copy
    for key in path[:-1]:
        parent = parent[int(key)] if isinstance(parent, list) else parent[key]
    parent[int(path[-1]) if isinstance(parent, list) else path[-1]] = value
    return copy


def nested(path: Path, messages: list) -> dict:
    errors: Any = messages
    for key in reversed(path):
        errors = {key: errors}
    return errors


def errors_at(errors: dict, path: Path) -> Any:
    for key in path:
        errors = errors.get(key) if isinstance(errors, dict) else None
    return errors


def parameters(operation: dict, where: str) -> list[dict]:
    return [p for p in operation.get("parameters", []) if p["in"] == where]


def spoiled_text(example: Any, path: Path, raw: str) -> str:
    """The example as JSON text with the value at ``path`` written as ``raw`` JSON."""
    return json.dumps(replaced(example, path, PLACEHOLDER)).replace(json.dumps(PLACEHOLDER), raw)
