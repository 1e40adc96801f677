"""Pagination, the same everywhere: ``page`` and ``pageSize`` in the query, the list in the body,
and ``X-Pagination: {"total", "totalPages", "page", "pageSize"}`` in the headers."""

from __future__ import annotations

import json
import math

from marshmallow import fields, validate

from api.schemas import CamelSchema

MAX_PAGE_SIZE = 200
HEADER = "X-Pagination"


class PageArgs(CamelSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


def paginate(query, args: dict) -> tuple[list, dict[str, str]]:
    """One page of a peewee query, and the header describing it."""
    total = query.count()
    page, size = args["page"], args["page_size"]
    items = list(query.paginate(page, size))
    header = {
        "total": total,
        "totalPages": math.ceil(total / size) if total else 0,
        "page": page,
        "pageSize": size,
    }
    return items, {HEADER: json.dumps(header)}
