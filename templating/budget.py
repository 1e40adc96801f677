"""What one template render may use, and the size an operation's result would have.

A render has a byte budget (what it writes, and the size of any value it makes) and a time
budget. The budget of the render under way is a context variable, so every thread (a Dramatiq
worker thread, a gunicorn worker) and every request has its own; the sandbox
(:mod:`templating.sandbox`) consults it at every loop iteration, call, filter, intercepted
operator and output, which are the only places template code can loop or grow a value.
Sizes are computed *before* the operation runs, from its operands, so a refused operation
allocates nothing.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Mapping, ValuesView
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from string import Formatter
from typing import Any

from jinja2.runtime import Undefined
from jinja2.utils import Namespace

from templating.problem import TemplateProblem

#: The most digits a number may have: what Python converts to text by default.
MAX_INT_DIGITS = 4300
MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))

#: How deep calls (macros calling macros, recursive loops) may nest: well below Python's own
#: recursion limit, which a call of a macro uses about six frames of.
MAX_CALL_DEPTH = 40


class BudgetExceeded(TemplateProblem):
    """A render that would write more, make a bigger value, take longer or nest deeper than
    its budget allows."""


@dataclass
class RenderBudget:
    """The allowance of one render: ``max_bytes`` of output and of any value, until
    ``deadline`` (a :func:`time.monotonic` time, ``max_ms`` after the render began)."""

    max_bytes: int
    max_ms: int
    deadline: float
    written: int = 0
    depth: int = 0

    def tick(self) -> None:
        """Raise once the time is up."""
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(f"Rendering takes longer than {self.max_ms} ms.")

    def allow(self, size: int) -> None:
        """Refuse to make a value of more than ``max_bytes``."""
        if size > self.max_bytes:
            raise BudgetExceeded(f"A value would be larger than {self.max_bytes} bytes.")

    def write(self, size: int) -> None:
        """Count ``size`` bytes of output."""
        self.written += size
        if self.written > self.max_bytes:
            raise BudgetExceeded(f"The rendered text is longer than {self.max_bytes} bytes.")
        if time.monotonic() > self.deadline:
            self.tick()

    def weigh(self, value: Any) -> None:
        """Refuse ``value`` when its :func:`weight` is over the budget."""
        if not isinstance(value, str) or len(value) > self.max_bytes:
            self.allow(weight(value, self.max_bytes))

    def enter_call(self) -> None:
        """One more level of call nesting (until :meth:`leave_call`)."""
        self.tick()
        if self.depth >= MAX_CALL_DEPTH:
            raise BudgetExceeded(f"Calls are nested more than {MAX_CALL_DEPTH} deep.")
        self.depth += 1

    def leave_call(self) -> None:
        self.depth -= 1


_active: ContextVar[RenderBudget | None] = ContextVar("render_budget", default=None)


@contextmanager
def rendering(budget: RenderBudget) -> Iterator[RenderBudget]:
    """Make ``budget`` the one the renders in this block (in this thread) draw on."""
    token = _active.set(budget)
    try:
        yield budget
    finally:
        _active.reset(token)


def active() -> RenderBudget:
    """The budget of the render under way; a template renders only inside :func:`rendering`."""
    budget = _active.get()
    if budget is None:
        raise BudgetExceeded("A template renders only with a budget (templating.engine).")
    return budget


def text_bytes(text: str) -> int:
    """The length of ``text`` in UTF-8."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def weight(value: Any, limit: int, indent: int = 0) -> int:
    """About how many characters ``value`` takes written out (its ``str`` or ``repr``),
    counting a value referred to twice twice, as writing it out does; with ``indent``, plus
    that many spaces per level of nesting for each item. Stops counting once past ``limit``
    (so the cost is bounded by the limit, whatever the value), and never iterates anything but
    built-in collections (an iterator it is given stays unconsumed)."""
    if isinstance(value, str):
        return len(value) + 2
    total, stack = 0, [(value, 0)]
    while stack and total <= limit:
        item, depth = stack.pop()
        total += 2 + depth * indent
        if isinstance(item, str | bytes | bytearray):
            total += len(item)
        elif isinstance(item, bool) or item is None or isinstance(item, Undefined):
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() * 31 // 100 + 1
        elif isinstance(item, Namespace):
            stack.append((object.__getattribute__(item, "_Namespace__attrs"), depth))
        elif isinstance(item, Mapping):
            stack.extend((part, depth + 1) for pair in item.items() for part in pair)
        elif isinstance(item, list | tuple | AbstractSet | ValuesView):
            stack.extend((part, depth + 1) for part in item)
        else:
            total += 24
    return total


def check_number_bits(bits: int) -> None:
    """Refuse to make a number of more than MAX_INT_DIGITS digits."""
    if bits > MAX_INT_BITS:
        raise BudgetExceeded(f"A number would have more than {MAX_INT_DIGITS} digits.")


def _sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def binop_size(operator: str, left: Any, right: Any, limit: int) -> int:
    """The size of ``left <operator> right`` for ``+``, ``*``, ``%`` and ``**``, computed before
    it is (numbers: refused here when too long)."""
    integers = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and integers and right > 0 and abs(left) > 1:
        check_number_bits(abs(left).bit_length() * right)
    elif operator == "*" and integers:
        check_number_bits(left.bit_length() + right.bit_length())
    elif operator == "+" and integers:
        check_number_bits(max(left.bit_length(), right.bit_length()) + 1)
    elif operator == "*" and _sized(left) and isinstance(right, int):
        return _length(left, limit) * max(right, 0)
    elif operator == "*" and isinstance(left, int) and _sized(right):
        return _length(right, limit) * max(left, 0)
    elif operator == "+" and _sized(left) and _sized(right):
        return _length(left, limit) + _length(right, limit)
    elif operator == "%" and isinstance(left, str | bytes):
        return printf_size(left, right, limit)
    return 0


def _length(value: Any, limit: int) -> int:
    return len(value) if isinstance(value, str | bytes) else weight(value, limit)


#: A printf-style conversion: its width and precision (digits, or ``*``: taken from the args).
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def _number(digits: str, limit: int) -> int:
    return int(digits) if len(digits) < 10 else limit + 1


def printf_size(template: str | bytes, args: Any, limit: int) -> int:
    """An upper bound of the size of ``template % args``: the template, every width and
    precision, and all the arguments once per conversion."""
    text = template if isinstance(template, str) else template.decode("latin-1")
    size, args_weight, stars = len(text), weight(args, limit), False
    for width, precision, kind in _PRINTF.findall(text):
        if kind == "%":
            continue
        for number in (width, precision):
            stars |= number == "*"
            size += _number(number, limit) if number.isdigit() else 0
        size += args_weight
    if stars:
        items = args if isinstance(args, tuple) else (args,)
        size += sum(abs(item) for item in items if isinstance(item, int))
    return size


def format_size(template: str, args: tuple, kwargs: Mapping, limit: int) -> int:
    """An upper bound of the size of ``template.format(*args, **kwargs)``: the template, every
    number in a format spec (and any number given, for nested specs), and all the arguments
    once per field."""
    values = [*args, *kwargs.values()]
    size, values_weight = len(template), weight(values, limit)
    for _literal, field, spec, _conversion in Formatter().parse(template):
        if field is None:
            continue
        size += values_weight + sum(_number(n, limit) for n in re.findall(r"\d+", spec or ""))
        if spec and "{" in spec:
            size += sum(abs(value) for value in values if isinstance(value, int))
    return size
