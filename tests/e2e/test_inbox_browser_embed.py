"""The /inbox page framed by a portal, in headless Chromium: a portal whose origin is in
INBOX_FRAME_ANCESTORS shows it and receives ``{type: "herald:unread", unread}`` by postMessage
(again when the count changes); a portal from another origin gets no inbox (CSP
``frame-ancestors``); by default no one may frame it."""

from __future__ import annotations

from settings import settings
from tests.e2e.inbox_browser import screenshot, serving_html, user_token
from tests.inbox_support import broadcast_body, inapp_body, send_inapp
from tests.support import wait_until

PORTAL = """<!doctype html>
<html lang="ro"><head><meta charset="utf-8"><title>Portal</title></head>
<body style="font-family: sans-serif; margin: 1rem">
<h1>Portalul cetățeanului</h1>
<p>Notificări necitite: <strong id="unread">?</strong></p>
<iframe id="inbox" title="Mesajele mele" width="420" height="560" src="about:blank"></iframe>
<script>
  window.messages = [];
  window.addEventListener("message", (event) => {
    window.messages.push({ origin: event.origin, data: event.data });
    if (event.data && event.data.type === "herald:unread")
      document.getElementById("unread").textContent = event.data.unread;
  });
</script>
</body></html>"""


def frame_inbox(page, portal: str, inbox_url: str):
    """Open the portal and point its iframe at the inbox; the frame, once it has loaded."""
    page.goto(portal)
    with page.expect_response(lambda r: r.url.startswith(inbox_url.split("#")[0])) as answer:
        page.evaluate("(url) => { document.getElementById('inbox').src = url; }", inbox_url)
    page.wait_for_function("document.getElementById('inbox').contentWindow !== null")
    wait_until(lambda: len(page.frames) == 2 and page.frames[1].url != "about:blank")
    return page.frames[1], answer.value


def test_an_allowed_portal_frames_the_inbox_and_hears_the_unread_count(
    served, browser, client, sender, worker, monkeypatch
):
    from playwright.sync_api import expect

    posted = send_inapp(client, sender, inapp_body("ana"))
    send_inapp(client, sender, broadcast_body())
    token = user_token(client, sender, "ana")
    with serving_html(PORTAL) as portal, serving_html(PORTAL) as elsewhere:
        monkeypatch.setattr(settings, "INBOX_FRAME_ANCESTORS", f"https://portal.gov.md {portal}")
        page = browser.new_page(viewport={"width": 520, "height": 720})
        frame, answer = frame_inbox(page, portal, f"{served}/inbox?lang=ro#token={token}")
        assert (
            "frame-ancestors https://portal.gov.md " + portal
            in answer.headers["content-security-policy"]
        )

        inbox = page.frame_locator("#inbox")
        expect(inbox.locator("#badge")).to_have_text("2")
        wait_until(lambda: page.evaluate("window.messages.length") >= 1)
        assert page.evaluate("window.messages") == [
            {"origin": served, "data": {"type": "herald:unread", "unread": 2}}
        ]
        expect(page.locator("#unread")).to_have_text("2")
        screenshot(page, "embedded")

        # Reading an item in the frame tells the portal the new count.
        inbox.locator(f'#items li[data-id="{posted["messages"][0]["id"]}"] button').click()
        inbox.locator("#confirm-seen").click()
        expect(page.locator("#unread")).to_have_text("1")
        assert page.evaluate("window.messages")[-1]["data"] == {
            "type": "herald:unread",
            "unread": 1,
        }

        # Another origin, whatever it is, gets no inbox: Chromium blocks the framed document.
        other = browser.new_page()
        frame, answer = frame_inbox(other, elsewhere, f"{served}/inbox?lang=ro#token={token}")
        assert portal in answer.headers["content-security-policy"]
        assert elsewhere not in answer.headers["content-security-policy"]
        expect(other.frame_locator("#inbox").locator("#badge")).to_have_count(0)
        assert "badge" not in frame.content()
        assert not frame.url.startswith(served), frame.url
        assert other.evaluate("window.messages") == []


def test_by_default_no_one_may_frame_the_inbox(served, browser, client, sender):
    from playwright.sync_api import expect

    token = user_token(client, sender, "ana")
    assert settings.INBOX_FRAME_ANCESTORS == ""
    config = client.get("/inbox/config.json").get_json()
    assert config["frameAncestors"] == []
    with serving_html(PORTAL) as portal:
        page = browser.new_page()
        frame, answer = frame_inbox(page, portal, f"{served}/inbox#token={token}")
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        expect(page.frame_locator("#inbox").locator("#badge")).to_have_count(0)
        assert not frame.url.startswith(served), frame.url
