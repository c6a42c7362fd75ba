// Connect: choosing a client, a model or a key re-renders the snippet on the server (the key is
// sent, used and forgotten); Test connection asks the gateway to call its own URL with the key.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("connect");
  if (!root) return;
  const token = document.getElementById("connect-token");
  const model = document.getElementById("connect-model");
  const target = document.getElementById("connect-snippet");
  const result = document.getElementById("connect-result");
  const client = () => (root.querySelector('input[name="client"]:checked') || {}).value || "curl";

  function code(text, caption) {
    const block = document.getElementById("snippet-block").content.cloneNode(true);
    const cap = block.querySelector(".caption");
    if (caption) cap.textContent = caption.charAt(0).toUpperCase() + caption.slice(1) + ":"; else cap.remove();
    block.querySelector("pre").textContent = text;
    return block;
  }

  async function render() {
    const answer = await window.flock.post(root.dataset.snippetUrl, { client: client(), model: model.value, token: token.value });
    if (!answer.ok) { window.flock.toast(answer.message, "error"); return; }
    const s = answer.snippet;
    const box = document.createElement("div");
    box.dataset.snippetClient = s.client;
    const head = document.createElement("p");
    head.innerHTML = "<b></b> <span class=\"muted\"></span>";
    head.querySelector("b").textContent = s.title;
    head.querySelector("span").textContent = "· " + s.dialect_label + " at " + s.url;
    box.appendChild(head);
    s.blocks.forEach((b) => box.appendChild(code(b.text, b.caption)));
    if (s.notes.length) {
      const list = document.createElement("ul");
      list.className = "notes";
      s.notes.forEach((n) => { const li = document.createElement("li"); li.textContent = n; list.appendChild(li); });
      box.appendChild(list);
    }
    target.replaceChildren(box);
  }

  let timer = null;
  const later = () => { clearTimeout(timer); timer = setTimeout(render, 250); };
  root.querySelectorAll('input[name="client"]').forEach((radio) => radio.addEventListener("change", () => {
    root.querySelectorAll(".client").forEach((label) => label.classList.toggle("chosen", label.contains(radio) && radio.checked));
    const url = new URL(location.href); url.searchParams.set("client", radio.value);
    history.replaceState(null, "", url);
    render();
  }));
  model.addEventListener("change", render);
  token.addEventListener("input", later);

  document.getElementById("connect-create-key").addEventListener("click", async (event) => {
    event.target.disabled = true;
    const answer = await window.flock.post(root.dataset.keyUrl, { client: client() });
    event.target.disabled = false;
    window.flock.toast(answer.message, answer.ok ? "ok" : "error");
    if (!answer.ok) return;
    token.value = answer.token;
    document.getElementById("connect-new-key").textContent = answer.token;
    document.getElementById("connect-key-dialog").showModal();
    render();
  });

  document.getElementById("connect-test").addEventListener("click", async (event) => {
    event.target.disabled = true;
    result.hidden = false; result.className = "result"; result.textContent = "Testing…";
    const answer = await window.flock.post(root.dataset.testUrl, { token: token.value, model: model.value });
    event.target.disabled = false;
    result.className = "result " + (answer.ok ? "ok" : "error");
    result.textContent = answer.message + (answer.latency_ms !== undefined ? " (" + answer.latency_ms + " ms)" : "");
    if (answer.reply) {
      const reply = document.createElement("div");
      reply.className = "small"; reply.textContent = "Reply: " + answer.reply;
      result.appendChild(reply);
    }
    window.flock.toast(answer.ok ? "Connection works." : "Connection test failed.", answer.ok ? "ok" : "error");
  });
});
