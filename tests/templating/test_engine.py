"""The renderer's boundary: a template is user code, so whatever it does with whatever values,
rendering either succeeds or raises TemplateProblem with the part and line."""

import itertools
import math
from datetime import UTC, date, datetime

import pytest

from templating.engine import TemplateProblem, render_content

VALUES = [
    None,
    True,
    0,
    -1,
    7,
    10**30,
    0.5,
    -0.0,
    math.nan,
    math.inf,
    "",
    "0",
    "12,5",
    "1e999",
    "abc",
    "2026-12-01",
    "2026-12-01T09:00:00+02:00",
    "9999-99-99",
    [],
    [1, "a", None],
    {},
    {"a": 1},
    date(2026, 12, 1),
    datetime(2026, 12, 1, 9, tzinfo=UTC),
]
EXPRESSIONS = [
    "{{ n | number }}",
    "{{ n | date }}",
    "{{ n | date('short') }}",
    "{{ n | time }}",
    "{{ n | datetime('full') }}",
    "{{ n + 1 }}",
    "{{ n - m }}",
    "{{ n * m }}",
    "{{ n * 3 }}",
    "{{ 100 / n }}",
    "{{ n // m }}",
    "{{ n % m }}",
    "{{ -n }}",
    "{{ n < m }}",
    "{{ n | int + m | float }}",
    "{{ n | round }}",
    "{{ n | sum }}",
    "{{ n | first }}",
    "{{ n[0] }}",
    "{{ n.a }}",
    "{{ n | length }}",
    "{{ (n + m) | number }}",
    "{% for x in n %}{{ x | number }}{% endfor %}",
    "{{ '%d' % n }}",
    "{{ n | format(m) }}",
]


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_any_values_in_filters_and_arithmetic_render_or_raise_template_problem(source):
    content = {"channel": "sms", "language": "ro", "body": source}
    for n, m in itertools.product(VALUES, [None, 0, 2, "x", [1], math.nan]):
        try:
            rendered = render_content("property", content, {"n": n, "m": m}, "ro")
        except TemplateProblem as problem:
            assert problem.part == "body" and problem.line == 1
            assert str(problem) and "Traceback" not in str(problem)
        else:
            assert isinstance(rendered["body"], str)
