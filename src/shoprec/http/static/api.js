// The public API, as any client calls it. An API key, when one was entered on a page, is kept
// in sessionStorage (this tab only) and sent as X-API-Key; without one the server decides
// (storefront_anonymous, metrics_anonymous).

const KEY = "shoprec.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function headers(extra) {
  const h = { Accept: "application/json", ...extra };
  const key = apiKey();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function answer(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && (body.detail || body.error);
    const text = typeof detail === "string" ? detail : JSON.stringify(detail || response.statusText);
    throw new ApiError(response.status, text);
  }
  return body;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(name, String(value));
  }
  return q.toString();
}

export async function get(path, params = {}, { signal } = {}) {
  const qs = query(params);
  return answer(await fetch(qs ? `${path}?${qs}` : path, { headers: headers(), signal }));
}

export async function post(path, body) {
  return answer(
    await fetch(path, {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body ?? {}),
    }),
  );
}

// A message for an error, with what to do about a missing or refused key.
export function explain(error) {
  if (error instanceof ApiError && error.status === 401) {
    return `${error.message} — enter an API key below, or start the server with storefront_anonymous=loopback (the demo does).`;
  }
  if (error instanceof ApiError && error.status === 403) return `${error.message} — this key lacks the role.`;
  return error.message || String(error);
}
