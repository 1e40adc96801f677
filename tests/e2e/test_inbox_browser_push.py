""" "Notify me on this device" in headless Chromium: the page registers its service worker,
subscribes with the server's VAPID key and stores the subscription as the person's webpush
channel; a notification to their IDNP is then pushed, by a real worker, to a push service on
127.0.0.1 (tests/fakes/pushservice.py) that verifies VAPID and decrypts it.

Headless Chromium has no push service to talk to (its real ``PushManager.subscribe`` asks
Google's, which this machine cannot reach), so ONLY ``pushManager.subscribe`` is stubbed in the
page: it records what it was called with and returns the subscription of a browser made by the
fake push service (a real P-256 key pair and auth secret). Everything after it is real: the
page's PUT, the stored channel, fan-out, the worker, encryption, VAPID, the push service. The
service worker's display of a push is then checked by handing it that decrypted push through
the DevTools protocol (``ServiceWorker.deliverPushMessage``), again because no push service
can deliver one to this browser."""

from __future__ import annotations

import json

import pytest

from channels import REGISTRY
from channels.webpush import generate_vapid_keys
from models.contact import ContactChannel
from settings import settings
from tests.api.providers_support import send_to_person
from tests.e2e.inbox_browser import user_token
from tests.factories import contact_body, make_sender
from tests.fakes.pushservice import PushService
from tests.support import wait_until

STUB = """
window.heraldSubscribeCalls = [];
PushManager.prototype.subscribe = async function (options) {
  const key = new Uint8Array(options.applicationServerKey);
  const text = btoa(String.fromCharCode(...key));
  window.heraldSubscribeCalls.push({
    userVisibleOnly: options.userVisibleOnly,
    applicationServerKey: text.replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, ""),
  });
  const subscription = %s;
  return { endpoint: subscription.endpoint, expirationTime: null, toJSON: () => subscription };
};
"""
REGISTRATION = """navigator.serviceWorker.getRegistration("/inbox").then((r) =>
  r && { scope: r.scope, script: r.active && r.active.scriptURL })"""
SHOWN = """navigator.serviceWorker.ready.then((r) => r.getNotifications())
  .then((shown) => shown.map((n) => ({ title: n.title, body: n.body, data: n.data })))"""


@pytest.fixture
def push_service(monkeypatch):
    """A fresh VAPID key pair; loopback push endpoints allowed (the fake service is on
    127.0.0.1); fast retries."""
    private, public = generate_vapid_keys()
    monkeypatch.setattr(settings, "VAPID_PRIVATE_KEY", private)
    monkeypatch.setattr(settings, "VAPID_PUBLIC_KEY", public)
    monkeypatch.setattr(settings, "VAPID_SUBJECT", "mailto:ops@example.md")
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", True)
    monkeypatch.setattr(settings.WEBPUSH, "MIN_BACKOFF_MS", 50)
    service = PushService(application_server_key=public).start()
    yield service
    REGISTRY["webpush"].close()
    service.stop()


@pytest.fixture
def person(client, db) -> str:
    registry = make_sender("registry", permissions=["contacts:write"])
    body = contact_body(6, preferredLanguage="en")
    assert client.post("/v1/contacts", json=body, headers=registry.headers).status_code == 201
    return body["idnp"]


def subscribing_page(browser, push_service, served):
    """A page whose ``pushManager.subscribe`` answers with a fake push service subscription."""
    subscriber, subscription = push_service.subscribe()
    context = browser.new_context(permissions=["notifications"])
    context.add_init_script(STUB % json.dumps(subscription))
    return subscriber, subscription, context.new_page()


def test_a_device_subscribes_and_a_notification_is_pushed_to_it(
    served, browser, client, sender, person, push_service, worker
):
    from playwright.sync_api import expect

    _, subscription, page = subscribing_page(browser, push_service, served)
    page.goto(f"{served}/inbox#token={user_token(client, sender, person)}")
    expect(page.locator("html")).to_have_attribute("lang", "en")  # the person's language

    page.get_by_role("button", name="Notify me on this device").click()

    status = page.locator("#push-status")
    expect(status).to_have_text("This device will be notified.")
    calls = page.evaluate("window.heraldSubscribeCalls")
    assert calls == [{"userVisibleOnly": True, "applicationServerKey": settings.VAPID_PUBLIC_KEY}]
    registration = page.evaluate(REGISTRATION)
    assert registration == {"scope": f"{served}/inbox", "script": f"{served}/inbox/sw.js"}
    (channel,) = ContactChannel.select().where(ContactChannel.type == "webpush")
    assert channel.contact.idnp == person and channel.active
    assert json.loads(channel.address)["endpoint"] == subscription["endpoint"]

    send_to_person(client, sender, person, "webpush")

    assert push_service.rejections == []
    (push,) = push_service.pushes
    assert push.payload["title"] == "Programare"
    assert push.payload["body"] == "Vă așteptăm luni la ora 9:00."

    # The service worker shows that push as a notification whose click opens the inbox.
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    wait_until(lambda: page.evaluate("1") and registrations)
    (ours,) = [r for r in registrations if r["scopeURL"] == f"{served}/inbox"]
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": served,
            "registrationId": ours["registrationId"],
            "data": json.dumps(push.payload),
        },
    )
    wait_until(lambda: page.evaluate(SHOWN))
    assert page.evaluate(SHOWN) == [
        {
            "title": "Programare",
            "body": "Vă așteptăm luni la ora 9:00.",
            "data": {"url": f"{served}/inbox"},
        }
    ]


def test_a_user_who_is_no_registry_person_is_told_so(served, browser, client, sender, push_service):
    from playwright.sync_api import expect

    _, _, page = subscribing_page(browser, push_service, served)
    page.goto(f"{served}/inbox?lang=ro#token={user_token(client, sender, 'ana')}")
    page.get_by_role("button", name="Anunță-mă pe acest dispozitiv").click()
    expect(page.locator("#push-status")).to_have_text(
        "Notificările pe dispozitiv sunt doar pentru persoanele din registru."
    )
    assert ContactChannel.select().where(ContactChannel.type == "webpush").count() == 0


def test_without_vapid_keys_the_page_says_push_is_unavailable(served, browser, client, sender):
    from playwright.sync_api import expect

    page = browser.new_context(permissions=["notifications"]).new_page()
    page.goto(f"{served}/inbox?lang=en#token={user_token(client, sender, 'ana')}")
    page.get_by_role("button", name="Notify me on this device").click()
    expect(page.locator("#push-status")).to_have_text(
        "Device notifications are not available on this server."
    )


def test_the_service_worker_may_control_the_inbox(client):
    answer = client.get("/inbox/sw.js")
    assert answer.status_code == 200
    assert answer.headers["Service-Worker-Allowed"] == "/inbox"
    assert answer.mimetype == "text/javascript"
    assert b"notificationclick" in answer.data
