// Playground: a chat whose answers stream in. The request goes to /playground/chat, which runs
// the gateway's /v1/chat/completions for the signed-in admin; the answer is that endpoint's SSE
// stream, read here chunk by chunk with fetch().
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("playground");
  if (!box) return;
  const list = document.getElementById("playground-messages");
  const form = document.getElementById("playground-form");
  const input = document.getElementById("playground-input");
  const send = document.getElementById("playground-send");
  const stop = document.getElementById("playground-stop");
  const stats = document.getElementById("playground-stats");
  let history = [];
  let controller = null;

  function bubble(role, text) {
    const empty = document.getElementById("playground-empty");
    if (empty) empty.remove();
    const el = document.createElement("div");
    el.className = "message " + role;
    el.textContent = text;
    list.appendChild(el);
    list.scrollTop = list.scrollHeight;
    return el;
  }

  // Yields each SSE event's data from a fetch() body.
  async function* events(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const raw = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        const data = raw.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
        if (data) yield data;
      }
    }
  }

  async function ask(text) {
    history.push({ role: "user", content: text });
    bubble("user", text);
    const answer = bubble("assistant streaming", "");
    answer.dataset.chunks = "0";
    send.disabled = true; stop.hidden = false;
    controller = new AbortController();
    const started = performance.now();
    let first = null, chunks = 0, reply = "", usage = null;
    try {
      const res = await fetch(box.dataset.url, {
        method: "POST", credentials: "same-origin", signal: controller.signal,
        headers: { "Content-Type": "application/json", "Accept": "text/event-stream",
                   "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content },
        body: JSON.stringify({ model: document.getElementById("playground-model").value,
                               messages: history, stream: true,
                               stream_options: { include_usage: true },
                               max_tokens: Number(document.getElementById("playground-max").value) || 512 }),
      });
      if (res.redirected) { location.reload(); return; }
      if (!res.ok || !(res.headers.get("content-type") || "").includes("text/event-stream")) {
        let message = "HTTP " + res.status;
        try { message = (await res.json()).error.message; } catch (err) { /* keep the status */ }
        throw new Error(message);
      }
      for await (const data of events(res.body)) {
        if (data === "[DONE]") break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "the engine failed");
        if (chunk.usage) usage = chunk.usage;
        const delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta) || {};
        if (delta.content) {
          if (first === null) first = performance.now();
          chunks += 1; reply += delta.content;
          answer.textContent = reply;
          answer.dataset.chunks = String(chunks);
          list.scrollTop = list.scrollHeight;
        }
      }
      history.push({ role: "assistant", content: reply });
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      stats.textContent = "First token after " + Math.round((first || performance.now()) - started) + " ms · " + secs + " s" +
        (usage ? " · " + usage.prompt_tokens + " tokens in, " + usage.completion_tokens + " out" : "");
    } catch (err) {
      if (err.name === "AbortError") {
        history.push({ role: "assistant", content: reply });
        stats.textContent = "Stopped.";
      } else {
        history.pop();
        if (!reply) answer.remove();
        bubble("error", err.message);
        window.flock.toast("The request failed: " + err.message, "error");
      }
    } finally {
      answer.classList.remove("streaming");
      answer.dataset.done = "1";
      send.disabled = false; stop.hidden = true; controller = null;
      input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = "";
    ask(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  stop.addEventListener("click", () => { if (controller) controller.abort(); });
  document.getElementById("playground-clear").addEventListener("click", () => {
    if (controller) controller.abort();
    history = []; list.replaceChildren(); stats.textContent = "";
  });
});
