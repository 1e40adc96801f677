"""Reading a contact import: a JSON array of contacts, or CSV with one column per channel type."""

from __future__ import annotations

import csv
import io

from flask import Request
from flask_smorest import abort

import settings
from models.contact import CONTACT_CHANNEL_TYPES

CSV_FIELDS = ("idnp", "name", "preferredLanguage")


def read_import(request: Request) -> list[dict]:
    """The rows of the import as contact objects (camelCase, as the JSON API takes them)."""
    if request.mimetype == "text/csv":
        rows = _csv_rows(request.get_data(as_text=True))
    else:
        rows = request.get_json()
        if not isinstance(rows, list):
            abort(400, errors={"json": ["Expected a JSON array of contacts."]})
    if not rows:
        abort(400, errors={"json": ["No contacts to import."]})
    if len(rows) > settings.MAX_IMPORT_ROWS:
        abort(400, errors={"json": [f"At most {settings.MAX_IMPORT_ROWS} contacts per import."]})
    return [row if isinstance(row, dict) else {"_": row} for row in rows]


def _csv_rows(text: str) -> list[dict]:
    """One contact object per CSV record. A column the header leaves out, and an empty (or
    blank) cell, are both "not given": the upsert keeps what the contact has."""
    reader = csv.DictReader(io.StringIO(text))
    known = set(CSV_FIELDS) | set(CONTACT_CHANNEL_TYPES)
    unknown = [name for name in reader.fieldnames or [] if name not in known]
    if not reader.fieldnames or "idnp" not in reader.fieldnames or unknown:
        allowed = ", ".join([*CSV_FIELDS, *CONTACT_CHANNEL_TYPES])
        abort(
            400, errors={"csv": [f"The header must name idnp and only these columns: {allowed}."]}
        )
    rows = []
    for record in reader:
        cells = {name: (value or "").strip() for name, value in record.items() if name}
        row = {field: cells[field] for field in CSV_FIELDS if cells.get(field)}
        row["channels"] = [
            {"type": kind, "address": cells[kind]}
            for kind in CONTACT_CHANNEL_TYPES
            if kind != "webpush" and cells.get(kind)
        ]
        rows.append(row)
    return rows
