// Models: the catalog filter refreshes the catalog panel as you type; Install uses the chosen
// node; a pull that finishes or fails says so in a toast.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("catalog-filter");
  const node = document.getElementById("install-node");
  if (form) {
    let timer = null;
    const apply = (event) => {
      if (event && event.target === node) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        const params = new URLSearchParams(new FormData(form));
        for (const [key, value] of Array.from(params.entries())) if (!value) params.delete(key);
        window.flock.live.setParams(params.toString());
      }, 200);
    };
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", (event) => { event.preventDefault(); apply(); });
  }
  // The install form in each catalog row takes the node picked above the table.
  document.addEventListener("flock:before-post", (event) => {
    if (!("install" in event.target.dataset) || !node) return;
    event.target.querySelector('input[name="node"]').value = node.value;
  });

  const states = new Map();
  const remember = () => {
    const now = new Map();
    document.querySelectorAll("#installed-table tr[data-model]").forEach((row) => {
      const key = row.dataset.model + "@" + row.dataset.node;
      const before = states.get(key);
      const state = row.dataset.state;
      if (before && before !== state) {
        if (state === "ready") window.flock.toast(row.dataset.model + " is ready on " + row.dataset.node + ".");
        if (state === "failed") window.flock.toast(row.dataset.model + " failed: " + row.dataset.error, "error");
      }
      now.set(key, state);
    });
    states.clear();
    now.forEach((value, key) => states.set(key, value));
  };
  remember();
  document.addEventListener("flock:panel", (event) => { if (event.detail.name === "installed") remember(); });
});
