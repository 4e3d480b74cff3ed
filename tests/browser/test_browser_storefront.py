"""The storefront at ``/`` in chromium: search, facets, pages, sort, a product page, and a demo
shopper whose clicks change their recommendations and personalise their next search. What the
page shows is checked against the API's own answers for the same request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from support.live import FULL_QUALITY

Q = "quality"  # in every tiny product's description: 30 matches, three pages of 12
FACETS = "category,brand,price,in_stock"


def _storefront(serve: Any, artifacts: Path) -> tuple[str, httpx.Client]:
    live, _ = serve(artifacts=artifacts, storefront_anonymous="loopback", **FULL_QUALITY)
    return live.url, live.client()


def _ids(page: Page, selector: str) -> list[str]:
    return [str(i) for i in page.locator(f"{selector} > li").evaluate_all("els => els.map(e => e.dataset.id)")]


def _found(total: int) -> str:
    return f"{total} result{'' if total == 1 else 's'} for “{Q}”"


def _search(api: httpx.Client, **params: Any) -> dict[str, Any]:
    r = api.get("/v1/search", params={"q": Q, "facets": FACETS, "per_page": 12, **params})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_search_facets_pages_sort_and_a_product_page(serve: Any, tiny_static_artifacts: Path, page: Page) -> None:
    url, api = _storefront(serve, tiny_static_artifacts)
    with api:
        page.goto(url + "/")
        expect(page.get_by_role("heading", name="Popular right now")).to_be_visible()
        box = page.get_by_role("combobox", name="Search products")
        box.fill(Q)
        box.press("Enter")
        everything = _search(api)
        summary = page.locator("#summary")
        expect(summary).to_contain_text(f"{_found(everything['total'])} · page 1 of 3")
        expect(page.locator("#results > li")).to_have_count(12)
        assert _ids(page, "#results") == [h["id"] for h in everything["results"]]
        for value, count in everything["facets"]["brand"].items():  # the counts the API gave
            expect(page.locator(f"fieldset[data-facet=brand] label[for='f-brand-{value}'] .count")).to_have_text(
                f"({count})"
            )

        # two brands (an OR within the facet), chosen by keyboard, then a price range (an AND across)
        voltmark = page.get_by_role("checkbox", name="voltmark")
        voltmark.focus()
        page.keyboard.press("Space")
        expect(summary).to_contain_text(f"{_found(_search(api, brand='voltmark')['total'])} · Brand: voltmark · page")
        page.get_by_role("checkbox", name="ironridge").check()
        both = _search(api, brand="voltmark|ironridge")
        expect(summary).to_contain_text(f"{_found(both['total'])} · Brand: voltmark or ironridge · page")
        price = next(iter(both["facets"]["price"]))
        page.locator(f"fieldset[data-facet=price] input[value='{price}']").check()
        narrowed = _search(api, brand="voltmark|ironridge", price_range=price)
        expect(summary).to_contain_text(f"{_found(narrowed['total'])} · Brand: voltmark or ironridge · Price: ")
        assert _ids(page, "#results") == [h["id"] for h in narrowed["results"]]
        assert page.get_by_role("checkbox", name="voltmark").is_checked()

        # clear the filters, then page and sort
        page.get_by_role("checkbox", name="voltmark").uncheck()
        expect(summary).to_contain_text(" · Brand: ironridge · Price: ")
        page.get_by_role("checkbox", name="ironridge").uncheck()
        expect(summary).not_to_contain_text("Brand:")
        page.locator(f"fieldset[data-facet=price] input[value='{price}']").uncheck()
        expect(summary).to_contain_text(f"{_found(everything['total'])} · page 1 of 3")
        page.get_by_role("button", name="Page 2", exact=True).click()
        expect(summary).to_contain_text("page 2 of 3")
        expect(page.get_by_role("button", name="Page 2", exact=True)).to_have_attribute("aria-current", "page")
        assert _ids(page, "#results") == [h["id"] for h in _search(api, page=2)["results"]]
        page.get_by_role("button", name="Next page").click()
        expect(summary).to_contain_text("page 3 of 3")
        expect(page.locator("#results > li")).to_have_count(everything["total"] - 24)
        page.get_by_label("Sort by").select_option("price_asc")
        expect(summary).to_contain_text("page 1 of 3")
        cheapest = _search(api, sort="price_asc")["results"]
        expect(page.locator("#results > li").first).to_have_attribute("data-id", cheapest[0]["id"])
        assert _ids(page, "#results") == [h["id"] for h in cheapest]

        # a product page: the product, similar products and what was bought after it
        first = page.locator("#results > li").first.get_by_role("link")
        title = first.inner_text()
        first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        similar = api.get(f"/v1/similar/{cheapest[0]['id']}", params={"k": 6}).json()
        expect(page.locator("#similar > li")).to_have_count(len(similar["results"]))
        expect(page.locator("#also-bought > li")).to_have_count(len(similar["also_bought"]))
        page.go_back()
        expect(summary).to_contain_text("page 1 of 3")


def test_a_demo_shoppers_clicks_change_their_rail_and_next_search(
    serve: Any, tiny_static_artifacts: Path, page: Page
) -> None:
    url, api = _storefront(serve, tiny_static_artifacts)
    with api:
        page.goto(url + "/")
        page.get_by_label("Shopping as").select_option("demo-ada")
        rail = page.locator("#rail")
        expect(page.get_by_role("heading", name="Recommended for you")).to_be_visible()
        expect(rail).to_have_attribute("data-strategy", "popularity")
        expect(rail).to_have_attribute("data-history", "0")
        before = rail.get_attribute("data-ids")

        box = page.get_by_role("combobox", name="Search products")
        box.fill("hammer")
        box.press("Enter")
        expect(page.locator("#results")).to_have_attribute("data-personalized", "false")
        clicked = page.locator("#results > li").first
        item = clicked.get_attribute("data-id")
        clicked.get_by_role("link").click()  # posted as a click event by demo-ada
        expect(rail).to_have_attribute("data-history", "1")
        expect(rail).not_to_have_attribute("data-strategy", "popularity")
        expect(rail).not_to_have_attribute("data-ids", before or "")
        expect(page.locator("#rail-why")).to_contain_text("From your 1 recent event")

        # the event reached the service: her history and her next search are hers
        rec = api.get("/v1/recommend", params={"user_id": "demo-ada", "k": 6}).json()
        assert rec["history_length"] == 1 and item not in [h["id"] for h in rec["results"]]
        expect(rail).to_have_attribute("data-ids", ",".join(h["id"] for h in rec["results"]))
        box.fill("hammer")
        box.press("Enter")
        expect(page.locator("#results")).to_have_attribute("data-personalized", "true")
        expect(page.locator("#summary")).to_contain_text("personalised for Ada")


def test_suggestions_by_keyboard_highlighting_and_did_you_mean(
    serve: Any, tiny_static_artifacts: Path, page: Page
) -> None:
    url, api = _storefront(serve, tiny_static_artifacts)
    with api:
        page.goto(url + "/")
        box = page.get_by_role("combobox", name="Search products")
        listbox = page.get_by_role("listbox", name="Suggestions")
        expected = api.get("/v1/suggest", params={"q": "cordl"}).json()
        box.press_sequentially("cordl")  # one input event per key, as a shopper types
        expect(listbox).to_be_visible()
        expect(box).to_have_attribute("aria-expanded", "true")
        options = listbox.get_by_role("option")
        expect(options).to_have_count(len(expected["suggestions"]) + len(expected["products"]))
        expect(options.first).to_have_text(expected["suggestions"][0]["text"])
        box.press("ArrowDown")
        box.press("ArrowDown")
        box.press("ArrowUp")
        expect(options.first).to_have_attribute("aria-selected", "true")
        expect(box).to_have_attribute("aria-activedescendant", "suggestion-0")
        box.press("Enter")  # picks the active suggestion
        picked = expected["suggestions"][0]["text"]
        expect(page.locator("#summary")).to_contain_text(f"for “{picked}”")
        expect(listbox).to_be_hidden()
        expect(box).to_have_attribute("aria-expanded", "false")
        expect(box).to_have_value(picked)
        first = page.locator("#results > li").first.get_by_role("link")
        expect(first.locator("mark").first).to_be_visible()  # the matched words, marked by the server
        expect(first.locator("mark")).to_have_text([w for w in ("Cordless", "Drill") if w in first.inner_text()])

        # Escape closes the list; a product suggestion opens its page
        box.fill("")
        box.press_sequentially("sof")
        expect(listbox).to_be_visible()
        box.press("Escape")
        expect(listbox).to_be_hidden()
        box.press("ArrowDown")  # reopens it on the first option
        product = api.get("/v1/suggest", params={"q": "sof"}).json()["products"][0]
        listbox.locator("[data-kind=product]").first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(product["title"])

        # did you mean: the corrected search, and the original on request
        box.fill("hamer")
        box.press("Enter")
        correction = page.locator("#correction")
        expect(correction).to_contain_text("Showing results for hammer.")
        expect(page.locator("#results mark").first).to_have_text("Hammer")
        page.get_by_role("button", name="Search instead for hamer").click()
        expect(correction).to_be_hidden()
        expect(page.locator("#summary")).to_contain_text("for “hamer”")
        assert "correct=false" in page.url
        original = api.get("/v1/search", params={"q": "hamer", "correct": "false", "per_page": 12}).json()
        assert original["correction"] is None
        expect(page.locator("#results > li")).to_have_count(len(original["results"]))
