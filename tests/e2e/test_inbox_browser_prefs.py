"""The /inbox page's preferences panel in headless Chromium, against the real
``/v1/inbox/preferences``: a toggle is stored, a reload shows it; the panel lists everywhere
and each service the user has notifications from; it is reached and left by keyboard."""

from __future__ import annotations

from models.preference import preferences_of
from tests.e2e.inbox_browser import screenshot, user_token
from tests.inbox_support import inapp_body, send_inapp
from tests.support import wait_until


def open_panel(page):
    from playwright.sync_api import expect

    page.get_by_role("button", name="Preferences").click()
    panel = page.get_by_role("region", name="Preferences")
    expect(panel.get_by_role("group", name="All services")).to_be_visible()
    return panel


def test_a_toggle_is_stored_and_shown_after_a_reload(served, browser, client, sender, worker):
    from playwright.sync_api import expect

    send_inapp(client, sender, inapp_body("ana", serviceName="permits"))
    send_inapp(client, sender, inapp_body("ana", serviceName="parking"))
    page = browser.new_page(viewport={"width": 480, "height": 900})
    page.goto(f"{served}/inbox?lang=en#token={user_token(client, sender, 'ana')}")
    expect(page.locator("#badge")).to_have_text("2")

    panel = open_panel(page)
    groups = panel.get_by_role("group")
    expect(groups).to_have_count(3)
    assert groups.all_inner_texts()[1].startswith("Service “parking”")
    everywhere = panel.get_by_role("group", name="All services")
    permits = panel.get_by_role("group", name="Service “permits”")
    expect(everywhere.get_by_role("checkbox", name="SMS")).to_be_checked()

    everywhere.get_by_role("checkbox", name="SMS").uncheck()
    expect(panel.get_by_role("status")).to_have_text("Preferences saved.")
    wait_until(lambda: preferences_of("ana")["channels"] == {"sms": False})
    permits.get_by_role("checkbox", name="Email").uncheck()
    wait_until(lambda: preferences_of("ana")["services"] == {"permits": {"email": False}})
    stored = preferences_of("ana")
    assert stored == {"channels": {"sms": False}, "services": {"permits": {"email": False}}}

    page.reload()
    panel = open_panel(page)
    everywhere = panel.get_by_role("group", name="All services")
    permits = panel.get_by_role("group", name="Service “permits”")
    expect(everywhere.get_by_role("checkbox", name="SMS")).not_to_be_checked()
    expect(everywhere.get_by_role("checkbox", name="Email")).to_be_checked()
    expect(permits.get_by_role("checkbox", name="Email")).not_to_be_checked()
    expect(permits.get_by_role("checkbox", name="Viber")).to_be_checked()
    # Off everywhere: the service's box says so and cannot be ticked back on its own.
    sms_for_permits = permits.get_by_role("checkbox", name="SMS (off for all services)")
    expect(sms_for_permits).to_be_disabled()
    screenshot(page, "panel-en")

    permits.get_by_role("checkbox", name="Email").check()
    wait_until(lambda: preferences_of("ana")["services"] == {})
    assert preferences_of("ana")["channels"] == {"sms": False}


def test_services_come_from_the_inbox_and_the_stored_document(served, browser, client, sender):
    from playwright.sync_api import expect

    token = user_token(client, sender, "ion")
    stored = client.put(
        "/v1/inbox/preferences",
        json={"channels": {}, "services": {"taxes": {"viber": False}}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert stored.status_code == 200, stored.get_json()
    page = browser.new_page()
    page.goto(f"{served}/inbox?lang=en#token={token}")
    panel = open_panel(page)
    taxes = panel.get_by_role("group", name="Service “taxes”")
    expect(taxes.get_by_role("checkbox", name="Viber")).not_to_be_checked()
    expect(panel.get_by_role("group")).to_have_count(2)


def test_the_panel_is_used_by_keyboard(served, browser, client, sender):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{served}/inbox?lang=en#token={user_token(client, sender, 'ana')}")
    toggle = page.get_by_role("button", name="Preferences")
    expect(toggle).to_be_visible()
    for _ in range(6):
        page.keyboard.press("Tab")
        if toggle.evaluate("element => element === document.activeElement"):
            break
    expect(toggle).to_be_focused()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("heading", name="Preferences")).to_be_focused()
    expect(page.get_by_role("group", name="All services")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("checkbox", name="Email").first).to_be_focused()
    page.keyboard.press("Space")
    expect(page.get_by_role("status").filter(has_text="Preferences saved.")).to_be_visible()
    assert preferences_of("ana")["channels"] == {"email": False}
    expect(page.get_by_role("checkbox", name="Email").first).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#prefs-panel")).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "false")
