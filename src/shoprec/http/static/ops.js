// The ops page: the service's own summary every second, and the model registry with rollback
// and promote for a key with the admin role (kept in sessionStorage by keyform.js).
import { ApiError, apiKey, explain, get, post } from "./api.js";
import { keyForm } from "./keyform.js";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

function ms(value) {
  return value == null ? "–" : value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(0)} ms`;
}

function ratio(cache) {
  return cache.hit_ratio == null ? "–" : `${(100 * cache.hit_ratio).toFixed(1)} %`;
}

function showError(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? explain(error) : "";
}

function render(summary) {
  const w = summary.requests;
  $("window").textContent = String(w.window_s);
  $("throughput").textContent = w.requests_per_s.toFixed(1);
  $("p50").textContent = ms(w.p50_ms);
  $("p99").textContent = ms(w.p99_ms);
  const d = summary.degradation;
  $("level").textContent = d.level;
  $("level").dataset.level = d.level;
  $("ladder").replaceChildren(
    ...d.levels.map((name, i) => {
      const li = document.createElement("li");
      li.textContent = name;
      if (i > 0) li.classList.add("degraded");
      li.setAttribute("aria-current", String(name === d.level));
      return li;
    }),
  );
  $("pressure").textContent = `${d.in_flight}/${d.max_in_flight} busy, ${d.queued} queued`;
  $("result-cache").textContent = ratio(summary.caches.result);
  $("embedding-cache").textContent = ratio(summary.caches.embedding);
  const model = summary.model;
  $("model-version").textContent = model ? model.registry_version || model.version : "not loaded";
  $("model-detail").textContent = model
    ? `${model.model_id} · ${model.products} products · from ${model.source}${model.signed_by ? ` · signed by ${model.signed_by}` : ""}`
    : "";
  const r = summary.refusals;
  $("refusals").textContent = `Refused since start: ${r.rate_limit} rate-limited, ${r.queue_full} queue full, ${r.deadline} past deadline.`;
}

async function poll() {
  try {
    render(await get("/v1/ops/summary"));
    showError(null);
  } catch (error) {
    showError(error);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// --- the registry ---------------------------------------------------------------------------

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  row.append(td);
  return td;
}

function renderRegistry(reg) {
  const status = $("registry-status");
  if (!reg.configured) {
    status.textContent = "No registry is configured (setting registry): the server serves fixed artifacts.";
    $("versions").hidden = $("history").hidden = true;
    $("rollback").disabled = true;
    return;
  }
  status.textContent = `Current: ${reg.current ?? "none"} · serving: ${reg.serving ?? "none"}${
    reg.previous.length ? ` · previous: ${reg.previous.join(", ")}` : ""
  }`;
  $("rollback").disabled = !reg.previous.length;
  const versions = $("versions").querySelector("tbody");
  versions.replaceChildren(
    ...reg.versions.map((v) => {
      const tr = document.createElement("tr");
      tr.dataset.version = v.id;
      cell(tr, v.id);
      cell(tr, v.pushed_at);
      cell(tr, v.model_id);
      cell(tr, v.id === reg.current ? "current" : v.served_before ? "served before" : "never served");
      const action = cell(tr, "");
      if (v.id !== reg.current) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = `Promote ${v.id}`;
        button.disabled = !v.served_before;
        if (!v.served_before) button.title = "Never served: promote it through the gates (shoprec registry promote)";
        button.addEventListener("click", () => act(() => post("/v1/admin/registry/promote", { version: v.id }), `Promoted ${v.id}.`));
        action.append(button);
      }
      return tr;
    }),
  );
  $("versions").hidden = false;
  const history = $("history").querySelector("tbody");
  history.replaceChildren(
    ...reg.history.map((h) => {
      const tr = document.createElement("tr");
      cell(tr, h.ts);
      cell(tr, h.action);
      cell(tr, h.version);
      cell(tr, h.previous);
      cell(tr, h.actor);
      return tr;
    }),
  );
  $("history").hidden = false;
}

async function loadRegistry() {
  const status = $("registry-status");
  if (!apiKey()) {
    status.textContent = "Enter a key with the admin role to see the registry, promote and roll back.";
    $("versions").hidden = $("history").hidden = true;
    $("rollback").disabled = true;
    return;
  }
  try {
    renderRegistry(await get("/v1/admin/registry"));
  } catch (error) {
    status.textContent = explain(error);
    $("rollback").disabled = true;
  }
}

async function act(call, done) {
  const status = $("registry-status");
  try {
    renderRegistry(await call());
    status.textContent = `${done} ${status.textContent}`;
  } catch (error) {
    status.textContent = error instanceof ApiError ? `Refused (${error.status}): ${error.message}` : explain(error);
  }
}

$("rollback").addEventListener("click", () => act(() => post("/v1/admin/registry/rollback"), "Rolled back."));
keyForm($("key-form"), loadRegistry);
loadRegistry();
poll();
