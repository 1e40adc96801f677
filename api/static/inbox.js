"use strict";
// The inbox page: lists the user's notifications through /v1/inbox with the user token from
// the address's fragment (#token=...), kept in sessionStorage for this tab only.
(function () {
  const $ = (id) => document.getElementById(id);
  // Dates as the page's language writes them (its <html lang>).
  const DATES = new Intl.DateTimeFormat(document.documentElement.lang, {
    dateStyle: "medium",
    timeStyle: "short",
  });
  let token = null;
  let current = null;

  function readToken() {
    const match = /(?:^|&)token=([^&]+)/.exec(location.hash.slice(1));
    if (match) {
      sessionStorage.setItem("heraldUserToken", decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname);
    }
    return sessionStorage.getItem("heraldUserToken");
  }

  async function api(path, options = {}) {
    const response = await fetch(path, {
      ...options,
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    });
    if (response.status === 401) {
      sessionStorage.removeItem("heraldUserToken");
      showTokenForm("Your access has expired; please sign in again.");
      throw new Error("unauthorised");
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  function showTokenForm(message) {
    $("token-form").hidden = false;
    $("status").textContent = message || "";
  }

  function setBadge(unread) {
    const badge = $("badge");
    badge.textContent = String(unread);
    badge.classList.remove("loading");
    badge.classList.toggle("zero", unread === 0);
    badge.setAttribute("aria-label", unread + " unread");
    document.title = unread ? "(" + unread + ") Inbox" : "Inbox";
  }

  async function refreshCount() {
    const counts = await api("/v1/inbox/count");
    setBadge(counts.unread);
  }

  function renderItem(item) {
    const li = document.createElement("li");
    li.className = item.state;
    li.dataset.id = item.id;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "open";
    button.textContent = item.subject || item.body.slice(0, 80);
    if (item.actionRequired) {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "action required";
      button.appendChild(tag);
    }
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent =
      (item.state === "unread" ? "Unread · " : "") + DATES.format(new Date(item.createdAt));
    button.appendChild(meta);
    button.addEventListener("click", () => openItem(item));
    li.appendChild(button);
    return li;
  }

  async function refreshList() {
    const items = await api("/v1/inbox?pageSize=50");
    const list = $("items");
    list.replaceChildren(...items.map(renderItem));
    if (!items.length) $("status").textContent = "You have no notifications.";
  }

  function openItem(item) {
    current = item;
    $("dialog-subject").textContent = item.subject || "Notification";
    $("dialog-body").textContent = item.body;
    const link = $("dialog-action");
    link.hidden = !item.actionUrl;
    if (item.actionUrl && /^https?:/i.test(item.actionUrl)) link.href = item.actionUrl;
    $("dialog-required").hidden = !item.actionRequired;
    $("confirm-seen").hidden = item.state !== "unread";
    $("item-dialog").showModal();
  }

  async function confirmSeen() {
    if (!current) return;
    await api("/v1/inbox/" + current.id + "/actions", {
      method: "POST",
      body: JSON.stringify({ actionType: "IsRead" }),
    });
    $("item-dialog").close();
    await Promise.all([refreshList(), refreshCount()]);
  }

  async function start() {
    $("token-form").hidden = true;
    $("status").textContent = "";
    await Promise.all([refreshList(), refreshCount()]);
    let poll = 30;
    try {
      poll = (await (await fetch("/inbox/config.json")).json()).pollSeconds;
    } catch (error) { /* keep the default */ }
    setInterval(() => refreshCount().catch(() => {}), poll * 1000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("confirm-seen").addEventListener("click", () => confirmSeen().catch(() => {}));
    $("dialog-close").addEventListener("click", () => $("item-dialog").close());
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem("heraldUserToken", $("token-input").value.trim());
      token = sessionStorage.getItem("heraldUserToken");
      start().catch(() => {});
    });
    token = readToken();
    if (token) start().catch(() => {});
    else showTokenForm("Open this page with the link you were given, or paste your token.");
  });
})();
