"""How big the result of a built-in method or filter would be, computed from its arguments
before it runs, for those whose result can be far larger than their operands (a width, a count,
a string inserted per line or per match). Every other result is weighed after the call.

Each function returns an upper bound in characters, or 0 when the arguments are not of the
kind the method or filter takes (the call itself then raises its own TypeError).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from templating.budget import format_size, printf_size, weight
from templating.problem import TemplateProblem


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


# --- methods of str and bytes (``s.center(n)``): (owner, limit, *args) ----------------------


def _padded(owner, limit, width=0, *rest) -> int:
    return max(len(owner), _int(width))


def _expandtabs(owner, limit, tabsize=8) -> int:
    return len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * _int(tabsize)


def _replace(owner, limit, old=None, new=None, count=-1) -> int:
    if not (isinstance(old, type(owner)) and isinstance(new, type(owner))):
        return 0
    found = owner.count(old) if old else len(owner) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    escaped = 6 if hasattr(owner, "__html__") else 1
    return len(owner) + found * len(new) * escaped


def _join(owner, limit, items=()) -> int:
    if isinstance(items, str | bytes):
        return len(items) * (1 + len(owner))
    return weight(items, limit) + len(owner) * len(items) if isinstance(items, list | tuple) else 0


def _translate(owner, limit, table=None, *rest) -> int:
    if not isinstance(table, Mapping):
        return len(owner)
    return len(owner) * max((weight(value, limit) for value in table.values()), default=1)


def _format(owner, limit, *args, **kwargs) -> int:
    return format_size(owner, args, kwargs, limit) if isinstance(owner, str) else 0


def _format_map(owner, limit, mapping=None) -> int:
    return format_size(owner, (), mapping, limit) if isinstance(mapping, Mapping) else 0


TEXT_METHODS: dict[str, Callable[..., int]] = {
    "center": _padded,
    "ljust": _padded,
    "rjust": _padded,
    "zfill": _padded,
    "expandtabs": _expandtabs,
    "replace": _replace,
    "join": _join,
    "translate": _translate,
    "format": _format,
    "format_map": _format_map,
}


def method_owner(function: Any) -> tuple[Any, str]:
    """The object a bound method belongs to, and the method's name (the sandbox hands out
    ``str.format`` wrapped; the wrapper names what it wraps)."""
    target = getattr(function, "__wrapped__", function)
    return getattr(target, "__self__", None), getattr(target, "__name__", "")


def call_size(owner: Any, name: str, args: tuple, kwargs: dict, limit: int) -> int:
    """An upper bound of the result of calling method ``name`` of ``owner`` with ``args``
    and ``kwargs``, for the built-in methods that can make much more than they are given; 0
    for any other call."""
    try:
        if isinstance(owner, str | bytes) and name in TEXT_METHODS:
            return TEXT_METHODS[name](owner, limit, *args, **kwargs)
        if isinstance(owner, int) and name == "to_bytes":
            return _int(args[0] if args else kwargs.get("length", 1))
    except TypeError:
        return 0
    return 0


# --- filters (``s | center(n)``): (limit, value, *args), as the filter's own signature --------


def _center(limit, value, width=80) -> int:
    return max(weight(value, limit), _int(width))


def _indent(limit, s, width=4, first=False, blank=False) -> int:
    lines = s.count("\n") + 1 if isinstance(s, str) else weight(s, limit)
    each = len(width) if isinstance(width, str) else _int(width)
    return weight(s, limit) + lines * max(each, 0)


def _wordwrap(limit, s, width=79, break_long_words=True, wrapstring=None, *rest) -> int:
    size = weight(s, limit)
    lines = 2 * size // max(_int(width), 1) + 1
    return size + lines * (weight(wrapstring, limit) if wrapstring is not None else 1)


def _filter_replace(limit, s, old, new, count=None) -> int:
    size = weight(s, limit)
    found = s.count(old) if isinstance(s, str) and isinstance(old, str) and old else size + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return size + found * 6 * weight(new, limit)


def _filter_join(limit, value, d="", attribute=None) -> int:
    return weight(value, limit) + len(value) * weight(d, limit) if isinstance(value, list) else 0


def _filter_format(limit, value, *args, **kwargs) -> int:
    if not isinstance(value, str):
        if weight(value, limit) > limit:
            return limit + 1
        value = str(value)
    return printf_size(value, kwargs or args, limit)


def _batch(limit, value, linecount, fill_with=None) -> int:
    return _int(linecount) * weight(fill_with, limit) if fill_with is not None else 0


def _slice(limit, value, slices, fill_with=None) -> int:
    return _int(slices) * (4 + (weight(fill_with, limit) if fill_with is not None else 0))


def _tojson(limit, value, indent=None) -> int:
    return 6 * weight(value, limit, _int(indent))


def _pprint(limit, value) -> int:
    return 2 * weight(value, limit, 1)


def _urlize(limit, value, trim_url_limit=None, nofollow=False, target=None, rel=None, *rest):
    return weight(value, limit) * (8 + (weight(target, limit) + weight(rel, limit) + 20) // 5)


def _xmlattr(limit, d, autospace=True) -> int:
    return 6 * weight(d, limit)


def _sum(limit, iterable, attribute=None, start=0) -> int:
    if not isinstance(start, int | float):
        raise TemplateProblem("sum adds numbers: its start must be a number.")
    return 0


FILTERS: dict[str, Callable[..., int]] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "replace": _filter_replace,
    "join": _filter_join,
    "format": _filter_format,
    "batch": _batch,
    "slice": _slice,
    "tojson": _tojson,
    "pprint": _pprint,
    "urlize": _urlize,
    "xmlattr": _xmlattr,
    "sum": _sum,
}

#: Filters given an iterator see it as a list, so that its size can be known first.
LISTED_FILTERS = frozenset({"join"})


def filter_size(name: str, value: Any, args: tuple, kwargs: dict, limit: int) -> int:
    """An upper bound of the result of filter ``name``; 0 for filters that make no more than a
    small multiple of what they are given (their result is weighed after)."""
    sizer = FILTERS.get(name)
    if sizer is None:
        return 0
    try:
        return sizer(limit, value, *args, **kwargs)
    except TypeError:
        return 0
