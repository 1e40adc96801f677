"""Request bodies the invariant test sends, built from the specs its strategies draw, with what
each should lead to (the body its emails carry, the import rows as the model applies them)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

from babel.numbers import format_decimal

from tests.factories import idnp
from tests.invariants.mail import address
from tests.invariants.model import NEW_SERIAL, Model
from tests.invariants.strategies import LONE_SURROGATE

CSV_COLUMNS = ("name", "preferredLanguage", "email")
#: The people each example starts with (imported, then subscribed to a service each).
PEOPLE = [
    {
        "idnp": idnp(NEW_SERIAL),
        "name": "Ion",
        "preferredLanguage": "ro",
        "channels": [{"type": "email", "address": address("ok", 7)}],
    },
    {
        "idnp": idnp(NEW_SERIAL + 1),
        "attributes": {"district": "Centru"},
        "channels": [{"type": "email", "address": address(kind, 7)} for kind in ("flaky", "down")],
    },
    {"idnp": idnp(NEW_SERIAL + 2), "name": "Ana"},
]


def _at(now: datetime, seconds: float | None) -> str | None:
    return None if seconds is None else (now + timedelta(seconds=seconds)).isoformat()


def plain(text: str) -> bool:
    """Whether ``text`` can be sent as it is (UTF-8 cannot carry a lone surrogate)."""
    return LONE_SURROGATE not in text


def plain_data(data) -> bool:
    """Whether no text in ``data`` (JSON) holds a lone surrogate."""
    return plain(json.dumps(data, ensure_ascii=False))


def notification(spec: dict, model: Model, now: datetime) -> dict:
    """A POST /v1/notifications body for a spec from ``strategies.sends``."""
    recipients = [model.recipient(r) for r in spec["recipients"]]
    body = {
        "recipients": recipients,
        "message": {"subject": spec["subject"], "body": spec["body"]},
    }
    if any(r["type"] == "idnp" for r in recipients):
        if spec["channels"]:
            body["channels"] = spec["channels"]
        body["channelPolicy"] = spec["policy"]
    if sent_at := _at(now, spec["send_in"]):
        body["sendAt"] = sent_at
    if valid_till := _at(now, spec["valid_for"]):
        body["validTill"] = valid_till
    return body


def broadcast(spec: dict, now: datetime) -> dict:
    """A POST /v1/notifications body to a service's subscribers (``strategies.broadcasts``)."""
    body = {
        "isBroadcast": True,
        "serviceName": spec["service"],
        "message": {"subject": spec["subject"], "body": spec["body"]},
    }
    if spec["channels"]:
        body["channels"] = spec["channels"]
    if sent_at := _at(now, spec["send_in"]):
        body["sendAt"] = sent_at
    return body


def templated(spec: dict, model: Model, now: datetime) -> dict:
    """A POST /v1/notifications body using a template (``strategies.template_sends``)."""
    attributes = {"who": spec["who"]}
    if spec["amount"] is not None:
        attributes["amount"] = spec["amount"]
    body = {
        "recipients": [model.recipient(r) for r in spec["recipients"]],
        "template": spec["template"],
        "attributes": attributes,
    }
    if sent_at := _at(now, spec["send_in"]):
        body["sendAt"] = sent_at
    return body


def templated_email_body(spec: dict, revision: int) -> str | None:
    """What the email of a templated send says (None when it cannot be rendered)."""
    if spec["amount"] == "abc" or not plain(spec["who"]):
        return None
    amount = "" if spec["amount"] is None else f" {format_decimal(spec['amount'], locale='ro')}"
    return f"B{revision} {spec['who']}{amount}"


def template(code: str, revision: int, name: str, **fields) -> dict:
    """A template body: an email and a default content that say ``B<revision>``/``D<revision>``
    and greet ``who``, with ``amount`` formatted by the ``number`` filter when given."""
    body = {
        "code": code,
        "name": name,
        "defaultLanguage": "ro",
        "attributes": [
            {"name": "who", "required": True, "example": "Ion"},
            {"name": "amount", "required": False, "example": 12.5},
        ],
        "contents": contents(revision),
        **fields,
    }
    return body


def contents(revision: int) -> list[dict]:
    return [
        {
            "channel": "email",
            "language": "ro",
            "subject": f"S{revision}",
            "body": f"B{revision} {{{{ who }}}}"
            "{% if amount is defined %} {{ amount | number }}{% endif %}",
        },
        {"channel": "default", "language": "ro", "body": f"D{revision} {{{{ who }}}}"},
    ]


def import_rows(specs: list[dict], model: Model, as_csv: bool) -> tuple[list[dict], set[int]]:
    """The rows of a contact import, one per person named, and the numbers (from 1) of those
    with an invalid IDNP. A CSV row carries only the CSV columns, and no text it cannot
    encode."""
    rows, invalid, seen = [], set(), set()
    for spec in specs:
        kind, number = spec["person"]
        person = model.known_idnp(number) if kind == "known" else None
        person = person or idnp(NEW_SERIAL + number)
        if kind == "invalid":
            person = person[:-1] + str((int(person[-1]) + 1) % 10)
        if person in seen:
            continue
        seen.add(person)
        row = {"idnp": person}
        for field in ("name", "preferredLanguage", "quietHours"):
            if field in spec:
                row[field] = spec[field]
        if "district" in spec:
            row["attributes"] = {"district": spec["district"]}
        if "emails" in spec:
            addresses = dict.fromkeys(address(kind, n) for kind, n in spec["emails"])
            row["channels"] = [{"type": "email", "address": a} for a in addresses]
        if as_csv:
            row = _csv_row(row)
        rows.append(row)
        if kind == "invalid":
            invalid.add(len(rows))
    return rows, invalid


def _csv_row(row: dict) -> dict:
    kept = {"idnp": row["idnp"]}
    for field in ("name", "preferredLanguage"):
        if field in row and plain(row[field]):
            kept[field] = row[field]
    if row.get("channels"):
        kept["channels"] = row["channels"][:1]
    return kept


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV, with only the columns some row uses; a cell left empty is a field the
    row does not mention."""
    used = [c for c in CSV_COLUMNS if any(_cell(row, c) for row in rows)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["idnp", *used])
    for row in rows:
        writer.writerow([row["idnp"], *(_cell(row, column) or "" for column in used)])
    return buffer.getvalue()


def _cell(row: dict, column: str) -> str | None:
    if column == "email":
        return row["channels"][0]["address"] if row.get("channels") else None
    return row.get(column)
