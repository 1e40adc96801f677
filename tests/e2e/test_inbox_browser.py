"""The /inbox page in headless Chromium (Debian's ``chromium``, driven by Playwright): open it
with a user token, see the unread badge, confirm a notification in the pop-up, and see the badge
drop and the IsRead action stored."""

from __future__ import annotations

import os
import re

from models.action import NotificationAction
from tests.inbox_support import broadcast_body, inapp_body, send_inapp, token_for


def test_confirming_a_notification_in_the_page(served, browser, client, sender, admin, worker):
    from playwright.sync_api import expect

    body = inapp_body("ana", requireAction=True)
    body["message"]["actionUrl"] = "https://portal.example.md/dosar/7"
    posted = send_inapp(client, sender, body)
    send_inapp(client, sender, broadcast_body())
    token = token_for(client, admin, "ana")["Authorization"].removeprefix("Bearer ")

    page = browser.new_page(viewport={"width": 390, "height": 760})
    page.goto(f"{served}/inbox#token={token}")
    badge = page.locator("#badge")
    expect(badge).to_have_text("2")
    expect(page.locator("#items li.unread")).to_have_count(2)
    # Dates as the page's language (en-GB) writes them, beside Romanian text: 1 Dec 2026, 22:45.
    meta = page.locator("#items li .meta").first.text_content()
    assert re.search(r"\b\d{1,2} [A-Z][a-z]{2,3} \d{4}, \d{2}:\d{2}$", meta), meta
    assert "#token" not in page.url
    expect(page.locator("#token-form")).to_be_hidden()

    page.locator("#items li button.open", has_text="Dosar aprobat").focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#item-dialog")
    dialog.wait_for(state="visible")
    assert page.locator("#dialog-body").text_content() == "Dosarul dvs. a fost aprobat."
    assert page.locator("#dialog-action").get_attribute("href") == body["message"]["actionUrl"]
    assert page.locator("#dialog-required").is_visible()
    if os.environ.get("INBOX_SCREENSHOT"):
        page.screenshot(path=os.environ["INBOX_SCREENSHOT"])
    page.locator("#confirm-seen").click()

    expect(badge).to_have_text("1")
    expect(dialog).to_be_hidden()
    actions = list(
        NotificationAction.select().where(NotificationAction.notification == posted["id"])
    )
    assert [(a.action_type, a.recipient_key) for a in actions] == [("IsRead", "ana")]
    expect(page.locator("#items li.unread")).to_have_count(1)


def test_the_badge_says_loading_until_the_count_is_known(served, browser, client, admin):
    from playwright.sync_api import expect

    token = token_for(client, admin, "ana")["Authorization"].removeprefix("Bearer ")
    page = browser.new_page()
    page.route("**/v1/inbox/count", lambda route: route.abort())
    page.goto(f"{served}/inbox#token={token}")
    expect(page.locator("#items")).to_be_attached()
    badge = page.locator("#badge")
    expect(badge).to_have_text("…")
    expect(badge).to_have_attribute("aria-label", "loading")
    assert page.request.get(f"{served}/favicon.ico").ok


def test_the_list_says_loading_until_it_is_there(served, browser, client, sender, worker):
    from playwright.sync_api import expect

    send_inapp(client, sender, inapp_body("ana"))
    token = token_for(client, sender, "ana")["Authorization"].removeprefix("Bearer ")
    held = []
    page = browser.new_page()
    page.route("**/v1/inbox?pageSize=50", lambda route: held.append(route))  # answered later
    page.goto(f"{served}/inbox?lang=ru#token={token}")
    loading = page.locator("#loading")
    expect(loading).to_have_text("Загрузка…")
    expect(page.locator("#items")).to_have_attribute("aria-busy", "true")
    expect(page.locator("#badge")).to_have_text("1")
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("#items li")).to_have_count(1)
    expect(loading).to_be_hidden()
    expect(page.locator("#items")).to_have_attribute("aria-busy", "false")
