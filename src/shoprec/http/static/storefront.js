// The storefront: search with suggestions, facets, sort and pages, "did you mean", product
// pages, and a demo shopper whose clicks (posted as events) change their recommendations and
// the order of their next search. Everything goes through the public API (api.js).
import { ApiError, explain, get, post } from "./api.js";
import { keyForm } from "./keyform.js";
import { placeholder } from "./placeholder.js";

const PER_PAGE = 12;
const FACETS = ["category", "brand", "price", "in_stock"];
const FACET_TITLES = { category: "Category", brand: "Brand", price: "Price", in_stock: "Availability" };
const FACET_PARAM = { category: "category", brand: "brand", price: "price_range", in_stock: "in_stock" };
const SHOPPER = "shoprec.shopper";

const $ = (id) => document.getElementById(id);
const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

// --- state in the address (#/search?..., #/product/ID, #/) --------------------------------

function currentRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, qs = ""] = hash.split("?");
  return { path, params: new URLSearchParams(qs) };
}

function go(path, params) {
  const qs = params ? params.toString() : "";
  const next = qs ? `${path}?${qs}` : path;
  if (location.hash === `#${next}`) route(); // the same address: no hashchange, so render again
  else location.hash = next;
}

function searchParams(q, extra = {}) {
  const params = new URLSearchParams({ q });
  for (const [name, value] of Object.entries(extra)) if (value) params.set(name, value);
  return params;
}

function shopper() {
  return $("shopper").value;
}

function showError(error) {
  const box = $("error");
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = explain(error);
  box.hidden = false;
}

function showView(name) {
  for (const view of ["home", "search", "product"]) $(`${view}-view`).hidden = view !== name;
}

// --- cards ------------------------------------------------------------------------------

function setTitle(element, hit) {
  // title_highlighted is HTML the server escaped, with <mark> around matched words
  if (typeof hit.title_highlighted === "string") element.innerHTML = hit.title_highlighted;
  else element.textContent = hit.title;
}

function card(hit, { from, query } = {}) {
  const li = document.createElement("li");
  li.className = "card";
  li.dataset.id = hit.id;
  li.append(placeholder(hit));
  const link = document.createElement("a");
  link.className = "title";
  link.href = `#/product/${encodeURIComponent(hit.id)}`;
  setTitle(link, hit);
  link.addEventListener("click", () => recordClick(hit.id, from === "results" ? query : undefined));
  const meta = document.createElement("p");
  meta.className = "meta";
  const price = hit.price == null ? "" : money.format(hit.price);
  meta.textContent = [hit.brand, price, hit.in_stock ? "In stock" : "Out of stock"].filter(Boolean).join(" · ");
  li.append(link, meta);
  return li;
}

function fill(list, hits, options) {
  list.replaceChildren(...hits.map((hit) => card(hit, options)));
}

// --- events and the "recommended for you" rail --------------------------------------------

async function recordEvent(type, itemId, query) {
  const user = shopper();
  if (!user) return;
  try {
    await post("/v1/events", { events: [{ user_id: user, item_id: itemId, type, query: query || null }] });
    await refreshRail();
  } catch (error) {
    showError(error);
  }
}

function recordClick(itemId, query) {
  recordEvent("click", itemId, query);
}

let railSeq = 0;

async function refreshRail() {
  const user = shopper();
  const rail = $("rail");
  const seq = ++railSeq;
  try {
    const rec = await get("/v1/recommend", { user_id: user || undefined, k: 6 });
    if (seq !== railSeq) return; // a later refresh is under way (another shopper, a newer event)
    $("rail-title").textContent = user ? "Recommended for you" : "Popular right now";
    const seen = rec.history_length;
    $("rail-why").textContent = user
      ? seen
        ? `From your ${seen} recent event${seen === 1 ? "" : "s"} (${rec.strategy}).`
        : `No history yet: popular products (${rec.strategy}). Click a product to change this.`
      : `Pick a demo shopper to get recommendations of your own (${rec.strategy}).`;
    rail.dataset.strategy = rec.strategy;
    rail.dataset.history = String(seen);
    rail.dataset.ids = rec.results.map((h) => h.id).join(",");
    fill($("rail-list"), rec.results, { from: "rail" });
    rail.hidden = false;
  } catch (error) {
    if (seq !== railSeq) return;
    rail.hidden = true;
    if (!(error instanceof ApiError && error.status === 503)) showError(error);
  }
}

// --- search -------------------------------------------------------------------------------

function selected(params, facet) {
  const value = params.get(FACET_PARAM[facet]);
  return value ? value.split("|") : [];
}

function facetLabel(facet, value) {
  if (facet === "in_stock") return value === "true" ? "In stock" : "Out of stock";
  if (facet === "price") return value.endsWith("+") ? `$${value.slice(0, -1)} and up` : `$${value.replace("-", "–$")}`;
  return value;
}

function renderFacets(facets, params) {
  const aside = $("facets");
  aside.replaceChildren();
  const heading = document.createElement("h2");
  heading.textContent = "Filters";
  aside.append(heading);
  for (const facet of FACETS) {
    const chosen = selected(params, facet);
    // a chosen value stays (with 0) when the other facets' choices leave it nothing: it can be unchecked
    const counts = { ...(facets || {})[facet] };
    for (const value of chosen) if (!(value in counts)) counts[value] = 0;
    if (!Object.keys(counts).length) continue;
    const fieldset = document.createElement("fieldset");
    fieldset.dataset.facet = facet;
    const legend = document.createElement("legend");
    legend.textContent = FACET_TITLES[facet];
    fieldset.append(legend);
    for (const [value, count] of Object.entries(counts)) {
      const id = `f-${facet}-${value}`.replace(/[^A-Za-z0-9_-]/g, "_");
      const row = document.createElement("div");
      row.className = "facet-value";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.id = id;
      box.value = value;
      box.checked = chosen.includes(value);
      box.addEventListener("change", () => toggleFacet(facet, value, box.checked));
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = `${facetLabel(facet, value)} `;
      const n = document.createElement("span");
      n.className = "count";
      n.textContent = `(${count})`;
      label.append(n);
      row.append(box, label);
      fieldset.append(row);
    }
    aside.append(fieldset);
  }
}

function toggleFacet(facet, value, on) {
  const { params } = currentRoute();
  const name = FACET_PARAM[facet];
  let values = selected(params, facet).filter((v) => v !== value);
  if (on) values.push(value);
  if (facet === "in_stock" && values.length > 1) values = []; // both: no filter
  if (values.length) params.set(name, values.join("|"));
  else params.delete(name);
  params.delete("page");
  go("/search", params);
}

function pageButton(label, page, current, accessibleName) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  if (accessibleName) button.setAttribute("aria-label", accessibleName);
  if (page === current) button.setAttribute("aria-current", "page");
  button.addEventListener("click", () => {
    const { params } = currentRoute();
    params.set("page", String(page));
    go("/search", params);
    $("main").focus();
  });
  return button;
}

function renderPages(total, page) {
  const nav = $("pages");
  nav.replaceChildren();
  const last = Math.max(1, Math.ceil(total / PER_PAGE));
  if (last === 1) return;
  if (page > 1) nav.append(pageButton("‹ Previous", page - 1, -1, "Previous page"));
  const shown = new Set([1, last]);
  for (let p = Math.max(1, page - 2); p <= Math.min(last, page + 2); p++) shown.add(p);
  let before = 0;
  for (const p of [...shown].sort((a, b) => a - b)) {
    if (p - before > 1) {
      const gap = document.createElement("span");
      gap.textContent = "…";
      gap.setAttribute("aria-hidden", "true");
      nav.append(gap);
    }
    nav.append(pageButton(String(p), p, page, `Page ${p}`));
    before = p;
  }
  if (page < last) nav.append(pageButton("Next ›", page + 1, -1, "Next page"));
}

function renderCorrection(result, params) {
  const box = $("correction");
  const correction = result.correction;
  box.replaceChildren();
  if (!correction) {
    box.hidden = true;
    return;
  }
  const text = document.createElement("p");
  const strong = document.createElement("strong");
  strong.textContent = correction.corrected;
  text.append("Showing results for ", strong, ".");
  const instead = document.createElement("button");
  instead.type = "button";
  instead.className = "link";
  instead.id = "search-instead";
  instead.textContent = `Search instead for ${correction.original}`;
  instead.addEventListener("click", () => {
    const next = new URLSearchParams(params);
    next.set("q", correction.original);
    next.set("correct", "false");
    next.delete("page");
    go("/search", next);
  });
  const sentence = document.createElement("p");
  sentence.append(instead);
  box.append(text, sentence);
  box.hidden = false;
}

let searchSeq = 0;

async function runSearch(params) {
  const q = (params.get("q") || "").trim();
  $("q").value = q;
  if (!q) return go("/");
  showView("search");
  const page = Math.max(1, Number.parseInt(params.get("page") || "1", 10) || 1);
  const sort = params.get("sort") || "relevance";
  $("sort").value = sort;
  const request = {
    q,
    facets: FACETS.join(","),
    per_page: PER_PAGE,
    page,
    sort,
    highlight: "true",
    user_id: shopper() || undefined,
    correct: params.get("correct") === "false" ? "false" : undefined,
  };
  for (const facet of FACETS) request[FACET_PARAM[facet]] = params.get(FACET_PARAM[facet]) || undefined;
  const seq = ++searchSeq;
  $("results").setAttribute("aria-busy", "true");
  try {
    const result = await get("/v1/search", request);
    if (seq !== searchSeq) return; // a later search is under way
    showError(null);
    renderCorrection(result, params);
    renderFacets(result.facets, params);
    fill($("results"), result.results, { from: "results", query: result.query });
    const total = result.total ?? result.results.length;
    const who = result.personalized ? ` · personalised for ${$("shopper").selectedOptions[0].textContent}` : "";
    const searched = result.correction ? result.correction.corrected : q;
    const filters = FACETS.filter((facet) => selected(params, facet).length).map(
      (facet) => ` · ${FACET_TITLES[facet]}: ${selected(params, facet).map((v) => facetLabel(facet, v)).join(" or ")}`,
    );
    const pages = Math.max(1, Math.ceil(total / PER_PAGE));
    $("summary").textContent =
      `${total} result${total === 1 ? "" : "s"} for “${searched}”${filters.join("")} · page ${page} of ${pages}${who}`;
    $("results").dataset.personalized = String(result.personalized);
    renderPages(total, page);
  } catch (error) {
    if (seq === searchSeq) showError(error);
  } finally {
    if (seq === searchSeq) $("results").removeAttribute("aria-busy");
  }
}

// --- product page ---------------------------------------------------------------------------

async function showProduct(id) {
  showView("product");
  const article = $("product");
  article.replaceChildren();
  try {
    const [product, similar] = await Promise.all([
      get(`/v1/products/${encodeURIComponent(id)}`),
      get(`/v1/similar/${encodeURIComponent(id)}`, { k: 6 }),
    ]);
    showError(null);
    const title = document.createElement("h1");
    title.textContent = product.title;
    const facts = document.createElement("p");
    facts.className = "meta";
    const price = product.price == null ? "" : money.format(product.price);
    facts.textContent = [product.brand, product.category, price, product.in_stock ? "In stock" : "Out of stock"]
      .filter(Boolean)
      .join(" · ");
    const description = document.createElement("p");
    description.textContent = product.description;
    const cart = document.createElement("button");
    cart.type = "button";
    cart.id = "add-to-cart";
    cart.textContent = "Add to cart";
    const note = document.createElement("p");
    note.className = "muted";
    note.setAttribute("role", "status");
    cart.addEventListener("click", async () => {
      if (!shopper()) {
        note.textContent = "Pick a demo shopper to record this.";
        return;
      }
      await recordEvent("cart", product.id);
      note.textContent = "Added to cart.";
    });
    const body = document.createElement("div");
    body.append(title, facts, description, cart, note);
    article.append(placeholder(product, "large"), body);
    article.dataset.id = product.id;
    fill($("similar"), similar.results, { from: "similar" });
    fill($("also-bought"), similar.also_bought, { from: "also" });
    title.setAttribute("tabindex", "-1");
    title.focus();
  } catch (error) {
    showError(error);
  }
}

// --- suggestions: a combobox over a listbox (WAI-ARIA 1.2) ----------------------------------

const combo = {
  input: null,
  list: null,
  items: [],
  active: -1,
  seq: 0,
  abort: null,

  init() {
    this.input = $("q");
    this.list = $("suggestions");
    this.input.addEventListener("input", () => this.fetch());
    this.input.addEventListener("keydown", (event) => this.keydown(event));
    this.input.addEventListener("blur", () => this.close());
    // keep the focus in the input when an option is pressed
    this.list.addEventListener("mousedown", (event) => event.preventDefault());
  },

  async fetch() {
    // a trailing space is kept: the server then completes the next word, not the last one
    const q = this.input.value.trimStart();
    this.abort?.abort();
    this.deselect(); // typing after moving in the list starts over

    if (!q.trim()) return this.close();
    const seq = ++this.seq;
    this.abort = new AbortController();
    try {
      const answer = await get("/v1/suggest", { q }, { signal: this.abort.signal });
      if (seq === this.seq && this.input.value.trimStart() === q) this.render(answer);
    } catch (error) {
      if (error.name !== "AbortError") this.close(); // no suggestions: the search box still works
    }
  },

  render(answer) {
    // an answer that lands after the shopper moved in the list keeps their option active
    const activeKey = this.active >= 0 ? this.key(this.items[this.active]) : null;
    this.items = [
      ...(answer.suggestions || []).map((s) => ({ kind: "query", text: s.text, source: s.source })),
      ...(answer.products || []).map((p) => ({ kind: "product", hit: p })),
    ];
    this.active = -1;
    this.list.replaceChildren(
      ...this.items.map((item, i) => {
        const li = document.createElement("li");
        li.id = `suggestion-${i}`;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.dataset.kind = item.kind;
        if (item.kind === "query") {
          li.textContent = item.text;
          li.dataset.source = item.source;
        } else {
          li.append(placeholder(item.hit, "tiny"));
          const text = document.createElement("span");
          setTitle(text, item.hit);
          li.append(text);
        }
        li.addEventListener("click", () => this.pick(i));
        return li;
      }),
    );
    if (this.items.length) this.open();
    else this.close();
    const keep = this.items.findIndex((item) => this.key(item) === activeKey);
    if (keep >= 0) this.select(keep);
    else this.input.removeAttribute("aria-activedescendant");
  },

  key(item) {
    return item.kind === "query" ? `q:${item.text}` : `p:${item.hit.id}`;
  },

  open() {
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
  },

  close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
    this.active = -1;
  },

  move(delta) {
    if (!this.items.length) return;
    if (this.list.hidden) this.open();
    const n = this.items.length;
    this.select(this.active < 0 ? (delta > 0 ? 0 : n - 1) : (this.active + delta + n) % n);
  },

  deselect() {
    this.active = -1;
    for (const li of this.list.children) li.setAttribute("aria-selected", "false");
    this.input.removeAttribute("aria-activedescendant");
  },

  select(index) {
    this.active = index;
    [...this.list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === this.active)));
    const li = this.list.children[this.active];
    this.input.setAttribute("aria-activedescendant", li.id);
    li.scrollIntoView({ block: "nearest" });
  },

  keydown(event) {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      this.move(1);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      this.move(-1);
    } else if (event.key === "Enter" && !this.list.hidden && this.active >= 0) {
      event.preventDefault();
      this.pick(this.active);
    } else if (event.key === "Escape") {
      if (!this.list.hidden) {
        event.preventDefault();
        this.close();
      }
    }
  },

  pick(i) {
    const item = this.items[i];
    this.close();
    this.seq++; // a suggestion still on its way must not reopen the list
    if (item.kind === "query") {
      this.input.value = item.text;
      go("/search", searchParams(item.text, { sort: currentRoute().params.get("sort") }));
    } else {
      recordClick(item.hit.id, this.input.value.trim());
      go(`/product/${encodeURIComponent(item.hit.id)}`);
    }
  },
};

// --- wiring -------------------------------------------------------------------------------------

function route() {
  const { path, params } = currentRoute();
  if (path === "/search") return runSearch(params);
  if (path.startsWith("/product/")) return showProduct(decodeURIComponent(path.slice("/product/".length)));
  showView("home");
  return null;
}

function init() {
  combo.init();
  const picker = $("shopper");
  picker.value = localStorage.getItem(SHOPPER) || "";
  if (picker.selectedIndex < 0) picker.value = "";
  picker.addEventListener("change", () => {
    localStorage.setItem(SHOPPER, picker.value);
    refreshRail();
    if (currentRoute().path === "/search") route();
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("q").value.trim();
    combo.close();
    if (q) go("/search", searchParams(q, { sort: $("sort").value }));
  });
  $("sort").addEventListener("change", () => {
    const { params } = currentRoute();
    params.set("sort", $("sort").value);
    params.delete("page");
    go("/search", params);
  });
  keyForm($("key-form"), () => {
    refreshRail();
    route();
  });
  window.addEventListener("hashchange", route);
  refreshRail();
  route();
}

init();
