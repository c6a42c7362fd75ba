// Nodes: "Add a worker" issues a one-time join token and shows the commands that use it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("add-worker");
  const dialog = document.getElementById("worker-dialog");
  if (!button || !dialog) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    const result = await window.flock.post(button.dataset.url);
    button.disabled = false;
    if (!result.ok) { window.flock.toast(result.message || "Could not create a join token.", "error"); return; }
    const expires = new Date(result.expires_at);
    const fields = { install: result.install, join: result.join, leader: result.leader,
                     expires: expires.toLocaleTimeString() };
    for (const [name, value] of Object.entries(fields)) {
      dialog.querySelectorAll('[data-field="' + name + '"]').forEach((el) => { el.textContent = value; });
    }
    dialog.showModal();
    window.flock.toast(result.message);
  });
});
