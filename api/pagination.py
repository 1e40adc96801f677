"""Pagination, the same everywhere: ``page`` and ``pageSize`` in the query, the list in the body,
and ``X-Pagination: {"total", "totalPages", "page", "pageSize"}`` in the headers."""

from __future__ import annotations

import json
import math

from marshmallow import fields, validate
from peewee import SQL, CompoundSelectQuery

from tasks.requests import CamelSchema

MAX_PAGE_SIZE = 200
HEADER = "X-Pagination"


class PageArgs(CamelSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


def count_rows(query, limit: int | None = None) -> int:
    """How many rows ``query`` yields (at most ``limit + 1`` when a limit is given), counted
    without its ordering or its columns, so the database may answer from indexes alone."""
    simple = not isinstance(query, CompoundSelectQuery)  # a UNION is counted as it is
    if simple and not query._distinct and not query._group_by:
        query = query.order_by().select(SQL("1"))
    if limit is not None:
        query = query.limit(limit + 1)
    return query.count()


def paginate(query, args: dict, count_limit: int | None = None) -> tuple[list, dict[str, str]]:
    """One page of a peewee query, and the header describing it. With ``count_limit``, a total
    past it is given as ``count_limit`` with ``"totalCapped": true``."""
    total = count_rows(query, count_limit)
    capped = False
    if count_limit is not None and total > count_limit:
        total, capped = count_limit, True
    page, size = args["page"], args["page_size"]
    items = list(query.paginate(page, size))
    header = {
        "total": total,
        "totalPages": math.ceil(total / size) if total else 0,
        "page": page,
        "pageSize": size,
    }
    if capped:
        header["totalCapped"] = True
    return items, {HEADER: json.dumps(header)}
