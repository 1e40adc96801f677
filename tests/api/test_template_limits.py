"""A template is user code, so each render is bounded in bytes, in time and in call depth, the
same at save (its examples), preview and send: past a bound, save and preview are a 400 naming
the content and part, and a legitimate large template still renders."""

import pytest

from tests.factories import visit_reminder

BIG = 10**9

#: (source, attributes that render it, attributes that do not, what the problem says).
BY_ATTRIBUTES = {
    "repetition": ("{{ x * n }}", 2, 2000000, "A value would be larger than 1048576 bytes."),
    "power": ("{{ 10 ** n }}", 3, 5000, "A number would have more than 4300 digits."),
    "printf width": ("{{ '%*d' % (n, 1) }}", 3, BIG, "A value would be larger than"),
    "format width": ("{{ '{:>{}}'.format(x, n) }}", 3, BIG, "A value would be larger than"),
    "center filter": ("{{ x | center(n) }}", 3, BIG, "A value would be larger than"),
    "center method": ("{{ x.center(n) }}", 3, BIG, "A value would be larger than"),
    "batch filler": ("{{ [1] | batch(n, 0) | list | length }}", 2, BIG, "A value would be"),
    "doubling": (
        "{% set ns = namespace(s=x) %}{% for i in range(n) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s | length }}",
        3,
        40,
        "A value would be larger than 1048576 bytes.",
    ),
    "nested loops": (
        "{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}done",
        2,
        100000,
        "Rendering takes longer than 1000 ms.",
    ),
    "output kept in a block": (
        "{% filter upper %}{% for i in range(n) %}{{ x * 100 }}{% endfor %}{% endfilter %}",
        2,
        100000,
        "The rendered text is longer than 1048576 bytes.",
    ),
    "filter block": (
        "{% for i in range(n) %}{% filter center(100000) %}{% endfilter %}{% endfor %}",
        2,
        100000,
        "The rendered text is longer than 1048576 bytes.",
    ),
    "recursion": (
        "{% macro m(k) %}{% if k %}{{ m(k - 1) }}{% endif %}{% endmacro %}{{ m(n) }}",
        3,
        1000,
        "Calls are nested more than 40 deep.",
    ),
    "range": ("{{ range(n) | list | length }}", 3, BIG, "Cannot render: Range too big."),
}

#: (source, what the problem says): templates no attributes can make render.
ALWAYS = {
    "include": ('ok\n{% include "x" %}', "A template stands alone", 2),
    "import": ('{% import "x" as m %}{{ m.y }}', "A template stands alone", 1),
    "extends": ('{% extends "x" %}', "A template stands alone", 1),
    "literal power": ("{{ 10**5000 }}", "A number would have more than 4300 digits.", 1),
    "literal range": ("{{ range(10**9) | list }}", "Cannot render: Range too big.", 1),
    "recursion": (
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "Calls are nested more than 40 deep.",
        1,
    ),
    "recursive loop": (
        "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
        "Calls are nested more than 40 deep.",
        1,
    ),
    "long number": ("{{ " + "9" * 5000 + " }}", "Syntax error: Exceeds the limit", None),
    "deep parentheses": ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "Syntax error", None),
    "lipsum": ("{{ lipsum(10**6) }}", "Undefined attribute: 'lipsum' is undefined", 1),
}


def counter(body: str, n, code: str = "counter") -> dict:
    """A template whose email body is ``body`` over attributes ``x`` and ``n``."""
    return visit_reminder(
        code=code,
        attributes=[
            {"name": "x", "required": True, "example": "ab"},
            {"name": "n", "required": True, "example": n},
        ],
        contents=[
            {"channel": "sms", "language": "ro", "body": "{{ x }}"},
            {"channel": "email", "language": "ro", "subject": "Counter", "body": body},
        ],
    )


@pytest.mark.parametrize("case", list(BY_ATTRIBUTES))
def test_saving_a_template_whose_examples_go_over_a_bound_is_400(client, sender, case):
    source, _good, bad, problem = BY_ATTRIBUTES[case]
    response = client.post("/v1/templates", json=counter(source, bad), headers=sender.headers)

    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["code"] == 400 and body["status"] == "Bad Request"
    (message,) = body["errors"]["contents"]["1"]["body"]
    assert message.startswith(problem)


@pytest.mark.parametrize("case", list(ALWAYS))
def test_saving_a_template_that_cannot_render_within_bounds_is_400(client, sender, case):
    source, problem, line = ALWAYS[case]
    response = client.post("/v1/templates", json=counter(source, 1), headers=sender.headers)

    assert response.status_code == 400, response.get_json()
    (message,) = response.get_json()["errors"]["contents"]["1"]["body"]
    assert message.startswith(problem)
    assert message.endswith(f"(line {line})") if line else "(line" not in message


@pytest.mark.parametrize("case", list(BY_ATTRIBUTES))
def test_previewing_with_values_that_go_over_a_bound_is_400(client, sender, case):
    source, good, bad, problem = BY_ATTRIBUTES[case]
    saved = client.post("/v1/templates", json=counter(source, good), headers=sender.headers)
    assert saved.status_code == 201, saved.get_json()

    response = client.post(
        "/v1/templates/counter/preview",
        json={"channel": "email", "attributes": {"x": "ab", "n": bad}},
        headers=sender.headers,
    )

    assert response.status_code == 400, response.get_json()
    (message,) = response.get_json()["errors"]["attributes"]
    assert message.startswith(f"body: {problem}")


LANGUAGES = [
    "ro",
    "ru",
    "en",
    "fr",
    "de",
    "it",
    "es",
    "pt",
    "pl",
    "uk",
    "bg",
    "cs",
    "da",
    "el",
    "et",
    "fi",
    "hu",
    "lt",
    "lv",
    "sk",
]


def test_a_save_renders_all_its_contents_within_one_time_budget(client, sender):
    """Twenty contents that never finish: the save answers once one render's time budget
    (1 s) is spent, not after twenty of them."""
    import time

    endless = "{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}done"
    template = counter(endless, 100000)
    template["contents"] = [
        {"channel": "email", "language": language, "subject": "S", "body": endless}
        for language in LANGUAGES
    ]

    started = time.monotonic()
    response = client.post("/v1/templates", json=template, headers=sender.headers)

    assert time.monotonic() - started < 10  # twenty budgets would be 20 s
    assert response.status_code == 400, response.get_json()
    problems = response.get_json()["errors"]["contents"]
    assert len(problems) == 20
    assert problems["0"] == {"body": ["Rendering takes longer than 1000 ms. (line 1)"]}
    assert all(  # the others find the time spent at their first part
        list(problem.values()) == [["Rendering takes longer than 1000 ms. (line 1)"]]
        for problem in problems.values()
    )


def test_preview_attributes_are_bounded_like_a_sends(client, sender, monkeypatch):
    from settings import settings

    monkeypatch.setattr(settings, "MAX_ATTRIBUTES_BYTES", 1000)
    saved = client.post("/v1/templates", json=counter("{{ x }}", 1), headers=sender.headers)
    assert saved.status_code == 201

    response = client.post(
        "/v1/templates/counter/preview",
        json={"channel": "email", "attributes": {"x": "a" * 2000, "n": 1}},
        headers=sender.headers,
    )

    assert response.status_code == 400
    assert response.get_json()["errors"] == {"attributes": ["At most 1000 bytes of JSON."]}


ROWS = [{"name": f"Ion Popescu {i}", "amount": i * 1234.5, "due": "2026-12-01"} for i in range(50)]
TABLE = (
    "<table>{% for row in rows %}<tr class=\"{{ loop.cycle('odd', 'even') }}\">"
    "<td>{{ loop.index }}</td><td>{{ row.name | title }}</td><td>{{ row.amount | number }}</td>"
    '<td>{{ row.due | date }}</td><td><a href="https://example.md/pay/{{ loop.index }}">Plătiți'
    "</a></td></tr>{% endfor %}</table>"
)


def statement() -> dict:
    """A legitimate large template: a 50-row statement, as text and as an html table."""
    return visit_reminder(
        code="statement",
        attributes=[{"name": "rows", "required": True, "example": ROWS}],
        contents=[
            {
                "channel": "email",
                "language": "ro",
                "subject": "Situația plăților",
                "body": "{% for row in rows %}{{ loop.index }}. {{ row.name }}: "
                "{{ row.amount | number }}\n{% endfor %}",
                "html": TABLE,
            }
        ],
    )


def test_a_legitimate_large_template_saves_and_previews(client, sender):
    assert client.post("/v1/templates", json=statement(), headers=sender.headers).status_code == 201

    response = client.post(
        "/v1/templates/statement/preview",
        json={"channel": "email", "attributes": {"rows": ROWS}},
        headers=sender.headers,
    )

    assert response.status_code == 200, response.get_json()
    rendered = response.get_json()
    assert rendered["html"].count("<tr") == 50
    assert "<td>50</td><td>Ion Popescu 49</td><td>60.490,5</td>" in rendered["html"]
    assert '<a href="https://example.md/pay/50">' in rendered["html"]
    assert rendered["body"].count("\n") == 50
