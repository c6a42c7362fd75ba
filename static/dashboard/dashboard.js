// Flock dashboard: toasts, actions posted with fetch(), confirmations, copy buttons, dialogs, and
// live panels refreshed over a websocket while the page is visible (polling when it cannot).
"use strict";
(function () {
  const POLL_MS = 5000;
  const WS_RETRY_MS = [1000, 3000];      // then fall back to polling
  const WS_AGAIN_MS = 30000;             // while polling, try the websocket again this often

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // --- toasts (bottom right, 3 s; errors stay a little longer) --------------------------------
  function toast(message, kind) {
    const box = document.getElementById("toasts");
    if (!box || !message) return;
    const el = document.createElement("div");
    el.className = "toast " + (kind || "ok");
    el.textContent = message;
    box.appendChild(el);
    dismissLater(el, kind === "error" ? 6000 : 3000);
  }
  function dismissLater(el, ms) {
    setTimeout(() => { el.classList.add("leaving"); setTimeout(() => el.remove(), 300); }, ms);
  }

  // --- posting actions ------------------------------------------------------------------------
  async function post(url, data) {
    const body = data instanceof FormData ? data : new URLSearchParams(data || {});
    let res;
    try {
      res = await fetch(url, {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      });
    } catch (err) {
      return { ok: false, message: "The gateway did not answer: " + err.message };
    }
    if (res.redirected && new URL(res.url).pathname === "/login") {
      toast("Your session has ended: sign in again.", "error");
      setTimeout(() => location.assign(res.url), 1200);
      return { ok: false, message: "signed out" };
    }
    const type = res.headers.get("content-type") || "";
    if (!type.includes("application/json")) {
      const reason = res.status === 403 ? "refused (is the page too old? reload it)" : "HTTP " + res.status;
      return { ok: false, message: "The action failed: " + reason };
    }
    const json = await res.json();
    if (json.ok === undefined) json.ok = res.ok;
    return json;
  }

  // --- confirmations --------------------------------------------------------------------------
  function confirmAction(text, button) {
    const dialog = document.getElementById("confirm-dialog");
    if (!dialog || !dialog.showModal) return Promise.resolve(window.confirm(text));
    dialog.querySelector("[data-confirm-text]").textContent = text;
    dialog.querySelector("[data-confirm-ok]").textContent = button || "Confirm";
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  // Forms marked data-ajax or data-confirm are posted with fetch(); their answer is a toast and
  // the live panels refresh at once. Plain forms inside live panels get the CSRF token added
  // (panels are rendered without a request, so they carry none).
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
    if (!form.querySelector('input[name="csrfmiddlewaretoken"]')) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = "csrfmiddlewaretoken"; input.value = csrfToken();
      form.appendChild(input);
    }
    if (!("ajax" in form.dataset) && !("confirm" in form.dataset)) return;
    event.preventDefault();
    if ("confirm" in form.dataset && !(await confirmAction(form.dataset.confirm, form.dataset.confirmButton))) return;
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    form.dispatchEvent(new CustomEvent("flock:before-post", { bubbles: true }));
    const result = await post(form.action, new FormData(form));
    buttons.forEach((b) => { b.disabled = false; });
    toast(result.message || (result.ok ? "Done." : "Failed."), result.ok ? "ok" : "error");
    form.dispatchEvent(new CustomEvent("flock:posted", { bubbles: true, detail: result }));
    live.refresh();
  });

  // --- copy buttons and dialogs ---------------------------------------------------------------
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (err) {  // plain http on a LAN address is not a secure context: no clipboard API
      const area = document.createElement("textarea");
      area.value = text; area.style.position = "fixed"; area.style.opacity = "0";
      document.body.appendChild(area); area.select();
      const done = document.execCommand("copy");
      area.remove();
      return done;
    }
  }
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy], [data-copy-prev], [data-close-dialog]");
    if (!button) return;
    if ("closeDialog" in button.dataset) {
      const dialog = button.closest("dialog");
      if (dialog) dialog.close();
      return;
    }
    const source = "copyPrev" in button.dataset ? button.previousElementSibling
      : document.querySelector(button.dataset.copy);
    if (!source) return;
    const ok = await copyText(source.textContent);
    toast(ok ? "Copied to the clipboard." : "Could not copy: select the text and copy it.", ok ? "ok" : "error");
  });

  // --- live panels ----------------------------------------------------------------------------
  const live = {
    socket: null, failures: 0, pollTimer: null, retryTimer: null, params: location.search,
    names() {
      return Array.from(document.querySelectorAll("[data-panel]")).map((el) => el.dataset.panel);
    },
    apply(panels) {
      for (const [name, html] of Object.entries(panels || {})) {
        document.querySelectorAll('[data-panel="' + name + '"]').forEach((el) => {
          if (el.innerHTML === html) return;
          el.innerHTML = html;
          el.dispatchEvent(new CustomEvent("flock:panel", { bubbles: true, detail: { name } }));
        });
      }
    },
    subscribe() {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify({ panels: this.names(), params: this.params }));
      }
    },
    connect() {
      if (document.hidden || !window.WebSocket || this.socket) return;
      const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/live";
      const socket = new WebSocket(url);
      this.socket = socket;
      socket.onopen = () => { this.failures = 0; this.stopPolling(); this.subscribe(); document.body.dataset.live = "websocket"; };
      socket.onmessage = (event) => {
        try { this.apply(JSON.parse(event.data).panels); } catch (err) { /* ignore a bad frame */ }
      };
      socket.onclose = (event) => {
        this.socket = null;
        if (document.hidden) return;
        if (event.code === 4401 || event.code === 4403) { this.startPolling(); return; }
        this.failures += 1;
        if (this.failures > WS_RETRY_MS.length) { this.startPolling(); this.retryLater(WS_AGAIN_MS); }
        else this.retryLater(WS_RETRY_MS[this.failures - 1]);
      };
    },
    retryLater(ms) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.connect(), ms);
    },
    disconnect() {
      clearTimeout(this.retryTimer);
      if (this.socket) { const s = this.socket; this.socket = null; s.onclose = null; s.close(); }
    },
    async poll() {
      const names = this.names();
      if (!names.length) return;
      const query = new URLSearchParams(this.params);
      query.set("panels", names.join(","));
      try {
        const res = await fetch("/live?" + query.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (res.redirected) { location.reload(); return; }
        if (res.ok) this.apply((await res.json()).panels);
      } catch (err) { /* the next poll tries again */ }
    },
    startPolling() {
      if (this.pollTimer || document.hidden) return;
      document.body.dataset.live = "polling";
      this.poll();
      this.pollTimer = setInterval(() => this.poll(), POLL_MS);
    },
    stopPolling() { clearInterval(this.pollTimer); this.pollTimer = null; },
    refresh() {
      if (this.socket && this.socket.readyState === WebSocket.OPEN) this.subscribe();
      else this.poll();
    },
    setParams(params) {
      this.params = params ? "?" + params : "";
      history.replaceState(null, "", location.pathname + this.params);
      this.refresh();
    },
    start() { if (this.names().length) this.connect(); },
  };
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) { live.disconnect(); live.stopPolling(); }
    else { live.failures = 0; live.start(); }
  });

  window.flock = { toast, post, confirm: confirmAction, copy: copyText, live };

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-server-message]").forEach((el) => dismissLater(el, el.classList.contains("error") ? 6000 : 3000));
    document.querySelectorAll("dialog[data-open-on-load]").forEach((d) => { if (d.showModal) d.showModal(); });
    live.start();
  });
})();
