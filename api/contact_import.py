"""Reading a contact import: a JSON array of contacts, or CSV with one column per channel type."""

from __future__ import annotations

import csv
import io
from typing import NoReturn

from flask import Request
from flask_smorest import abort

from channel_table import WEBPUSH
from models.contact import CONTACT_CHANNEL_TYPES
from settings import settings

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
    blank) cell, are both "not given": the upsert keeps what the contact has. CSV that cannot
    be read, or holds NUL, is a 400 naming the line."""
    if (nul := text.find("\x00")) >= 0:
        _refuse_line(text.count("\n", 0, nul) + 1, "Must not contain the NUL character (U+0000).")
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _records(reader)
    except csv.Error as error:
        _refuse_line(reader.reader.line_num, _csv_problem(error))


def _refuse_line(line: int, problem: str) -> NoReturn:
    abort(400, errors={"csv": [f"Line {line}: {problem}"]})


def _csv_problem(error: csv.Error) -> str:
    text = str(error)
    if text.startswith("field larger than field limit"):
        return f"A field is longer than {csv.field_size_limit()} characters."
    if text.startswith("new-line character seen in unquoted field"):
        return "A line ends in a bare CR, or a field has a line break without quotes."
    return f"Not valid CSV ({text})."


def _records(reader: csv.DictReader) -> list[dict]:
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
            if kind != WEBPUSH.recipient_type and cells.get(kind)
        ]
        rows.append(row)
    return rows
