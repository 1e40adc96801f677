"use strict";
// The inbox's service worker (served at /inbox/sw.js, scope /inbox): shows each web push Herald
// sends ({"title", "body", "url", "data"}, see channels/webpush.py) and, when the notification
// is clicked, focuses an open inbox or opens one.
const INBOX = new URL("/inbox", self.location.origin).href;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function pushed(event) {
  if (!event.data) return {};
  try {
    return event.data.json();
  } catch (error) {
    return { body: event.data.text() };
  }
}

self.addEventListener("push", (event) => {
  const message = pushed(event);
  event.waitUntil(
    self.registration.showNotification(message.title || "Herald", {
      body: message.body || "",
      icon: "/favicon.ico",
      data: { url: INBOX },
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = windows.find((client) => new URL(client.url).pathname === "/inbox");
      if (open) return open.focus();
      return self.clients.openWindow(INBOX);
    })()
  );
});
