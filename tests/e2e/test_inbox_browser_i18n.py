"""The /inbox page's languages and accessibility in headless Chromium: ro, ru and en chosen by
``?lang=``, else the person's preferred language, else the browser's, else Romanian; its words
and its dates (Intl.DateTimeFormat) differ by language; every control has an accessible name,
the keyboard reaches them in order, and the pop-up gives focus back."""

from __future__ import annotations

import re

import pytest

from models.message import Message
from tests.e2e.inbox_browser import screenshot, user_token
from tests.factories import contact_body, make_sender
from tests.inbox_support import inapp_body, send_inapp

#: Per language: the heading, the preferences button, the unread item's line (day month year,
#: time: the month as that language abbreviates it), the "action required" tag.
LANGUAGES = {
    "ro": ("Mesajele mele", "Preferințe", r"Necitit · {d} [a-zăâîșț]+\.? {y}, {t}", "necesită"),
    "ru": (
        "Мои сообщения",
        "Настройки",
        r"Не прочитано · {d} [а-яё]+\.? {y} г\., {t}",
        "требуется",
    ),
    "en": ("Inbox", "Preferences", r"Unread · {d} [A-Z][a-z]{{2,3}} {y}, {t}", "action required"),
}


@pytest.fixture
def sent_at(client, sender, worker):
    """One in-app notification to "ana" that requires an action: when it was made (UTC)."""
    posted = send_inapp(
        client, sender, inapp_body("ana", requireAction=True, serviceName="permits")
    )
    return Message.get_by_id(posted["messages"][0]["id"]).created_at


def utc_page(browser, locale: str = "en-US"):
    return browser.new_context(locale=locale, timezone_id="UTC").new_page()


def test_the_three_languages(served, browser, client, sender, sent_at):
    from playwright.sync_api import expect

    token = user_token(client, sender, "ana")
    lines = {}
    for language, (heading, preferences, line, tag) in LANGUAGES.items():
        page = utc_page(browser)
        page.goto(f"{served}/inbox?lang={language}#token={token}")
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        meta = page.locator("#items li .meta").first
        expect(meta).to_be_visible()
        lines[language] = meta.text_content()
        expected = line.format(d=sent_at.day, y=sent_at.year, t=sent_at.strftime("%H:%M"))
        assert re.fullmatch(expected, lines[language]), (language, lines[language])
        expect(page.locator("#items li .tag")).to_contain_text(tag)
        assert "?lang=" + language in page.url and "#token" not in page.url
        page.get_by_role("button", name=preferences).click()
        expect(page.locator("#prefs-groups fieldset")).to_have_count(2)
        screenshot(page, f"panel-{language}")
        page.context.close()
    assert len(set(lines.values())) == 3, lines


def test_the_language_is_the_persons_else_the_browsers_else_romanian(
    served, browser, client, sender
):
    from playwright.sync_api import expect

    registry = make_sender("registry", permissions=["contacts:write"])
    person = contact_body(8, preferredLanguage="ru")
    assert client.post("/v1/contacts", json=person, headers=registry.headers).status_code == 201
    cases = [
        (person["idnp"], "en-US", "", "ru"),
        (person["idnp"], "en-US", "?lang=en", "en"),
        ("ana", "ru-RU", "", "ru"),
        ("ana", "en-GB", "?lang=xx", "en"),
        ("ana", "de-DE", "", "ro"),
    ]
    for user, locale, query, language in cases:
        page = utc_page(browser, locale)
        page.goto(f"{served}/inbox{query}#token={user_token(client, sender, user)}")
        expect(page.locator("#badge")).to_have_text("0")
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(page.get_by_role("heading", level=1)).to_contain_text(LANGUAGES[language][0])
        page.context.close()


def test_the_controls_have_names_and_the_keyboard_reaches_them(
    served, browser, client, sender, sent_at
):
    from playwright.sync_api import expect

    page = utc_page(browser)
    page.goto(f"{served}/inbox?lang=en#token={user_token(client, sender, 'ana')}")
    expect(page.locator("#badge")).to_have_attribute("aria-label", "1 unread")
    item = page.get_by_role("button", name=re.compile("^Dosar aprobat"))
    order = [
        page.get_by_role("button", name="Preferences"),
        page.get_by_role("button", name="Notify me on this device"),
        item,
    ]
    for control in order:
        page.keyboard.press("Tab")
        expect(control).to_be_focused()
    expect(page.get_by_role("list", name="Notifications")).to_be_visible()
    for button in page.get_by_role("button").all():
        expect(button).to_have_accessible_name(re.compile(r"\S"))

    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Dosar aprobat")
    expect(dialog).to_be_visible()
    assert dialog.evaluate("d => d.contains(document.activeElement)")
    assert "An action is required." in dialog.aria_snapshot()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(item).to_be_focused()

    page.get_by_role("button", name="Preferences").click()
    checkboxes = page.get_by_role("region", name="Preferences").get_by_role("checkbox")
    expect(checkboxes).to_have_count(12)
    for box in checkboxes.all():
        expect(box).to_have_accessible_name(re.compile(r"\S"))
    snapshot = page.locator("#prefs-panel").aria_snapshot()
    assert 'group "All services"' in snapshot and 'checkbox "Browser notifications"' in snapshot
