"use strict";
// The inbox page: lists the user's notifications through /v1/inbox with the user token from
// the address's fragment (#token=...), kept in sessionStorage for this tab only; a preferences
// panel (/v1/inbox/preferences); "Notify me on this device" (a service worker and a push
// subscription stored through /v1/inbox/push-subscription). Words from inbox-i18n.js, in the
// language of ?lang=, else the person's, else the browser's, else Romanian. Framed by an
// allowed portal, it posts {type: "herald:unread", unread} to it.
(function () {
  const $ = (id) => document.getElementById(id);
  const STRINGS = window.HeraldInboxStrings;
  const LANGUAGES = Object.keys(STRINGS);
  let words = STRINGS.ro;
  let dates = null;
  let token = null;
  let config = { pollSeconds: 30, frameAncestors: [], channels: [], workerScope: "/inbox" };
  let items = [];
  let unread = null;
  let announced = null;
  let preferences = null;
  const shownServices = new Set();
  let current = null;

  // --- language ---------------------------------------------------------------------------
  function known(tag) {
    const base = String(tag || "").toLowerCase().split(/[-_]/)[0];
    return LANGUAGES.includes(base) ? base : null;
  }

  function askedLanguage() {
    return known(new URLSearchParams(location.search).get("lang"));
  }

  function setLanguage(language) {
    words = STRINGS[language];
    document.documentElement.lang = language;
    dates = new Intl.DateTimeFormat(words.locale, { dateStyle: "medium", timeStyle: "short" });
    document.querySelectorAll("[data-text]").forEach((element) => {
      element.textContent = words[element.dataset.text];
    });
    $("items").setAttribute("aria-label", words.notifications);
    if (unread === null) $("badge").setAttribute("aria-label", words.loadingLabel);
    else setBadge(unread);
    if (!$("loading").hidden) $("loading").textContent = words.loading;
    if (items.length) renderList();
    if (preferences) renderPreferences();
  }

  // --- the API ----------------------------------------------------------------------------
  function readToken() {
    const match = /(?:^|&)token=([^&]+)/.exec(location.hash.slice(1));
    if (match) {
      sessionStorage.setItem("heraldUserToken", decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
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
      showTokenForm(words.expired);
    }
    if (!response.ok) {
      const error = new Error("HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function showTokenForm(message) {
    $("token-form").hidden = false;
    $("status").textContent = message || "";
  }

  function setLoading(loading) {
    $("loading").hidden = !loading;
    $("loading").textContent = loading ? words.loading : "";
    $("items").setAttribute("aria-busy", String(loading));
  }

  // --- the list and its badge ---------------------------------------------------------------
  function setBadge(count) {
    unread = count;
    const badge = $("badge");
    badge.textContent = String(count);
    badge.classList.remove("loading");
    badge.classList.toggle("zero", count === 0);
    badge.setAttribute("aria-label", words.unread(count));
    document.title = count ? "(" + count + ") " + words.inbox : words.inbox;
  }

  function announce(count) {
    if (window.parent === window || count === announced) return;
    announced = count;
    for (const origin of config.frameAncestors) {
      window.parent.postMessage({ type: "herald:unread", unread: count }, origin);
    }
  }

  async function refreshCount() {
    const counts = await api("/v1/inbox/count");
    setBadge(counts.unread);
    announce(counts.unread);
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
      tag.textContent = words.actionRequired;
      button.appendChild(tag);
    }
    const meta = document.createElement("span");
    meta.className = "meta";
    const when = dates.format(new Date(item.createdAt));
    meta.textContent = item.state === "unread" ? words.unreadPrefix + " · " + when : when;
    button.appendChild(meta);
    button.addEventListener("click", () => openItem(item));
    li.appendChild(button);
    return li;
  }

  function renderList() {
    $("items").replaceChildren(...items.map(renderItem));
    $("status").textContent = items.length ? "" : words.empty;
  }

  async function refreshList() {
    items = await api("/v1/inbox?pageSize=50");
    items.forEach((item) => item.serviceName && shownServices.add(item.serviceName));
    renderList();
  }

  // --- the pop-up ---------------------------------------------------------------------------
  function openItem(item) {
    current = item;
    $("dialog-subject").textContent = item.subject || words.notification;
    $("dialog-body").textContent = item.body;
    const link = $("dialog-action");
    link.hidden = !item.actionUrl;
    if (item.actionUrl && /^https?:/i.test(item.actionUrl)) link.href = item.actionUrl;
    $("dialog-required").hidden = !item.actionRequired;
    $("confirm-seen").hidden = item.state !== "unread";
    $("item-dialog").showModal();
  }

  function dialogClosed() {
    // Focus goes back to the item that was opened (re-rendered after a confirmation).
    const opened = current && document.querySelector('#items li[data-id="' + current.id + '"] button');
    (opened || $("items")).focus();
  }

  async function confirmSeen() {
    if (!current) return;
    await api("/v1/inbox/" + current.id + "/actions", {
      method: "POST",
      body: JSON.stringify({ actionType: "IsRead" }),
    });
    await Promise.all([refreshList(), refreshCount()]);
    $("item-dialog").close();
  }

  // --- preferences --------------------------------------------------------------------------
  function asPreferences(value, fallback) {
    if (!value || typeof value.channels !== "object") return fallback;
    return { channels: { ...value.channels }, services: { ...(value.services || {}) } };
  }

  function checkbox(service, channel) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.dataset.channel = channel;
    input.dataset.service = service || "";
    const offEverywhere = preferences.channels[channel] === false;
    const own = service ? preferences.services[service] || {} : preferences.channels;
    input.checked = own[channel] !== false;
    const name = document.createElement("span");
    name.textContent = words.channels[channel] || channel;
    if (service && offEverywhere) {
      input.disabled = true;
      name.textContent += " (" + words.offEverywhere + ")";
    }
    input.addEventListener("change", () => toggled(input).catch(() => {}));
    label.append(input, name);
    return label;
  }

  function group(service) {
    const fieldset = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = service ? words.service(service) : words.everywhere;
    fieldset.appendChild(legend);
    config.channels.forEach((channel) => fieldset.appendChild(checkbox(service, channel)));
    return fieldset;
  }

  function renderPreferences() {
    Object.keys(preferences.services).forEach((name) => shownServices.add(name));
    const services = [...shownServices].sort();
    $("prefs-groups").replaceChildren(group(null), ...services.map(group));
  }

  async function toggled(input) {
    const { channel, service } = input.dataset;
    const wanted = asPreferences(preferences, preferences);
    const own = service ? { ...(wanted.services[service] || {}) } : wanted.channels;
    if (input.checked) delete own[channel];
    else own[channel] = false;
    if (service && Object.keys(own).length) wanted.services[service] = own;
    else if (service) delete wanted.services[service];
    $("prefs-status").textContent = words.saving;
    try {
      const saved = await api("/v1/inbox/preferences", {
        method: "PUT",
        body: JSON.stringify(wanted),
      });
      preferences = asPreferences(saved, wanted);
      $("prefs-status").textContent = words.saved;
    } catch (error) {
      $("prefs-status").textContent = words.saveFailed;
    }
    renderPreferences();
    const selector = 'input[data-channel="' + channel + '"][data-service="' + service + '"]';
    const again = $("prefs-groups").querySelector(selector);
    if (again) again.focus();
  }

  async function openPreferences() {
    $("prefs-panel").hidden = false;
    $("prefs-toggle").setAttribute("aria-expanded", "true");
    $("prefs-title").focus();
    $("prefs-groups").setAttribute("aria-busy", "true");
    $("prefs-status").textContent = words.loading;
    try {
      preferences = asPreferences(await api("/v1/inbox/preferences"), null);
      if (!preferences) throw new Error("not a preferences document");
      renderPreferences();
      $("prefs-status").textContent = "";
    } catch (error) {
      $("prefs-status").textContent = words.prefsFailed;
    } finally {
      $("prefs-groups").setAttribute("aria-busy", "false");
    }
  }

  function closePreferences() {
    $("prefs-panel").hidden = true;
    $("prefs-toggle").setAttribute("aria-expanded", "false");
    $("prefs-toggle").focus();
  }

  // --- web push on this device --------------------------------------------------------------
  function pushSupported() {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  }

  function keyBytes(base64url) {
    const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, (character) => character.charCodeAt(0));
  }

  async function subscribed() {
    const answer = await fetch("/v1/webpush/vapid-public-key");
    if (!answer.ok) return "pushUnavailable";
    const { publicKey } = await answer.json();
    const permission =
      Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
    if (permission !== "granted") return "pushDenied";
    await navigator.serviceWorker.register("/inbox/sw.js", { scope: config.workerScope });
    const registration = await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(publicKey),
    });
    try {
      await api("/v1/inbox/push-subscription", {
        method: "PUT",
        body: JSON.stringify(subscription),
      });
    } catch (error) {
      return error.status === 409 ? "pushNotPerson" : "pushFailed";
    }
    return "pushOn";
  }

  async function enablePush() {
    const button = $("push-enable");
    button.disabled = true;
    let outcome = "pushUnsupported";
    try {
      if (pushSupported()) outcome = await subscribed();
    } catch (error) {
      outcome = "pushFailed";
    }
    button.disabled = false;
    $("push-status").textContent = words[outcome];
    $("push-status").dataset.outcome = outcome;
  }

  // --- start --------------------------------------------------------------------------------
  async function readConfig() {
    try {
      config = { ...config, ...(await (await fetch("/inbox/config.json")).json()) };
    } catch (error) {
      /* keep the defaults */
    }
  }

  async function start() {
    $("token-form").hidden = true;
    $("status").textContent = "";
    setLoading(true);
    await readConfig();
    try {
      if (!askedLanguage()) {
        const me = await api("/v1/inbox/me");
        if (known(me.language)) setLanguage(known(me.language));
      }
      $("prefs-toggle").hidden = false;
      $("push-enable").hidden = false;
      await Promise.all([refreshList(), refreshCount()]);
    } catch (error) {
      if (error.status !== 401) $("status").textContent = words.failed;
    } finally {
      setLoading(false);
    }
    setInterval(() => refreshCount().catch(() => {}), config.pollSeconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    setLanguage(askedLanguage() || known(navigator.language) || LANGUAGES[0]);
    $("confirm-seen").addEventListener("click", () => confirmSeen().catch(() => {}));
    $("dialog-close").addEventListener("click", () => $("item-dialog").close());
    $("item-dialog").addEventListener("close", dialogClosed);
    $("prefs-toggle").addEventListener("click", () =>
      $("prefs-panel").hidden ? openPreferences() : closePreferences()
    );
    $("prefs-close").addEventListener("click", closePreferences);
    $("prefs-panel").addEventListener("keydown", (event) => {
      if (event.key === "Escape") closePreferences();
    });
    $("push-enable").addEventListener("click", () => enablePush());
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem("heraldUserToken", $("token-input").value.trim());
      token = sessionStorage.getItem("heraldUserToken");
      start().catch(() => {});
    });
    token = readToken();
    if (token) start().catch(() => {});
    else showTokenForm(words.tokenHelp);
  });
})();
