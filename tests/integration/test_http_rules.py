"""Merchandising rules over a real server on loopback: the admin API (roles, validation,
versions, rollback, audit) and their effect on ``GET /v1/search`` (pin, hide, boost, bury,
precedence, scopes, explain, sorts, facets, the result cache, the fast path and the route)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprec.http.app import create_app
from shoprec.security.apikeys import KeyStore
from shoprec.security.audit import verify
from shoprec.settings import Settings
from support.live import FULL_QUALITY, LiveServer, wait_ready
from support.tinyshop import tiny_products

RULES = "/v1/admin/rules"
BRAND = {p.id: p.brand for p in tiny_products()}
PRICE = {p.id: p.price for p in tiny_products()}


@dataclass
class Api:
    server: LiveServer
    admin: httpx.Client
    shopper: httpx.Client
    audit_log: Path

    def search(self, **params: Any) -> dict[str, Any]:
        resp = self.shopper.get("/v1/search", params=params)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def ids(self, **params: Any) -> list[str]:
        return [h["id"] for h in self.search(**params)["results"]]

    def put(self, *rules: dict[str, Any], note: str | None = None) -> dict[str, Any]:
        resp = self.admin.put(RULES, json={"rules": list(rules), "note": note})
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body


def rule(rid: str, scope: str, value: str, **action: Any) -> dict[str, Any]:
    return {"id": rid, "scope": {"type": scope, "value": value}, "action": action}


@pytest.fixture
def api(live_server: Callable[[Any], LiveServer], tiny_static_artifacts: Path, tmp_path: Path) -> Iterator[Api]:
    store = KeyStore(tmp_path / "keys.json", time.time, iterations=1)
    _, admin_key = store.create("merchandiser", ["admin", "search"])
    _, search_key = store.create("shop front", ["search"])
    settings = Settings.load(
        environ={},
        artifacts=tiny_static_artifacts,
        data_dir=tmp_path,
        keys_file=tmp_path / "keys.json",
        audit_log=tmp_path / "audit.jsonl",
        require_signature=False,
        max_k=20,
        **FULL_QUALITY,
    )
    server = live_server(create_app(settings))
    with (
        server.client(headers={"X-API-Key": admin_key}) as admin,
        server.client(headers={"X-API-Key": search_key}) as shopper,
    ):
        wait_ready(shopper)
        yield Api(server, admin, shopper, tmp_path / "audit.jsonl")


def test_a_key_without_the_admin_role_is_refused(api: Api) -> None:
    for method, path, body in [
        ("GET", RULES, None),
        ("PUT", RULES, {"rules": []}),
        ("GET", f"{RULES}/versions", None),
        ("POST", f"{RULES}/rollback", {"version": 1}),
    ]:
        resp = api.shopper.request(method, path, json=body)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["error"] == "forbidden"
        resp = httpx.request(method, api.server.url + path, json=body)
        assert resp.status_code == 401
    assert api.admin.get(f"{RULES}/versions").json() == []  # nothing was published


@pytest.mark.parametrize(
    ("rules", "status", "says"),
    [
        ([rule("p", "query_exact", "drill", type="pin", product_id="NOPE", position=1)], 400, "NOPE"),
        ([rule("p", "query_exact", "drill", type="pin", product_id="T001", position=0)], 422, "position"),
        ([rule("p", "query_exact", "drill", type="explode", product_id="T001")], 422, "explode"),
        ([rule("b", "query_exact", "drill", type="boost", match={})], 422, "at least one"),
        ([rule("b", "somewhere", "drill", type="hide", product_id="T001")], 422, "query_contains"),
        ([rule("h", "query_exact", "drill", type="hide", product_id="T001")] * 2, 422, "used twice"),
    ],
)
def test_bad_rules_get_a_4xx_saying_why(api: Api, rules: list[dict[str, Any]], status: int, says: str) -> None:
    resp = api.admin.put(RULES, json={"rules": rules})
    assert resp.status_code == status, resp.text
    assert says in resp.text and "error" in resp.json()
    assert api.admin.get(RULES).json()["version"] is None


def test_pin_hide_and_explain(api: Api) -> None:
    before = api.ids(q="drill", k=5)
    assert "T020" not in before  # the air conditioner: not a drill
    v = api.put(
        rule("ac-first", "query_exact", "drill", type="pin", product_id="T020", position=2),
        rule("no-top", "query_exact", "drill", type="hide", product_id=before[0]),
    )
    body = api.search(q="drill", k=5, explain="true")
    ids = [h["id"] for h in body["results"]]
    assert ids[1] == "T020" and before[0] not in ids and len(ids) == 5
    assert ids[0] == before[1]  # the rest keep the ranking's order
    assert body["rules_version"] == v["version"] == 1
    assert body["rules_applied"] == ["ac-first", "no-top"]
    assert body["results"][1]["rules"] == ["pin:ac-first"] and body["results"][0]["rules"] == []
    assert "rules" not in api.search(q="drill", k=5)["results"][0]  # only with explain


def test_precedence_hide_over_pin_over_boost(api: Api) -> None:
    api.put(
        rule("boost-comfy", "query_contains", "drill", type="boost", weight=5, match={"brand": "Ironridge"}),
        rule("pin-voltmark", "query_contains", "drill", type="pin", product_id="T000", position=1),
        rule("pin-hidden", "query_contains", "drill", type="pin", product_id="T024", position=2),
        rule("hide-it", "query_contains", "drill", type="hide", product_id="T024"),
    )
    ids = api.ids(q="cordless drill", k=6)
    assert ids[0] == "T000"  # the pin beats the boost of Ironridge products
    assert "T024" not in ids  # the hide beats its pin
    ironridge = [i for i, pid in enumerate(ids) if BRAND[pid] == "Ironridge"]
    others = [i for i, pid in enumerate(ids[1:], 1) if BRAND[pid] != "Ironridge"]
    assert ironridge and (not others or max(ironridge) < min(others))  # boosted ones right after the pin


def test_boost_and_bury_move_by_attribute(api: Api) -> None:
    # k = max_k: the whole window the rules reorder is shown
    base = api.ids(q="stainless", k=20)
    assert len(base) >= 3
    top_brand = BRAND[base[0]]
    api.put(rule("sink", "query_exact", "stainless", type="bury", match={"brand": top_brand}))
    buried = api.ids(q="stainless", k=20)
    assert sorted(buried) == sorted(base)
    assert BRAND[buried[0]] != top_brand
    assert [p for p in buried if BRAND[p] == top_brand] == buried[-sum(BRAND[p] == top_brand for p in buried) :]
    api.put(rule("cheap", "query_exact", "stainless", type="boost", match={"max_price": 100}))
    boosted = api.ids(q="stainless", k=20)
    cheap = [PRICE[p] is not None and PRICE[p] <= 100 for p in boosted]  # type: ignore[operator]
    assert cheap == sorted(cheap, reverse=True) and any(cheap)


def test_scopes_exact_containing_and_category(api: Api) -> None:
    api.put(
        rule("exact", "query_exact", "hammer", type="pin", product_id="T013", position=1),
        rule("contains", "query_contains", "paint", type="pin", product_id="T012", position=1),
        rule("category", "category", "Tools", type="pin", product_id="T002", position=1),
    )
    assert api.ids(q="hammer", k=3)[0] == "T013"
    assert api.ids(q="claw hammer", k=3)[0] != "T013"  # exact: not for a longer query
    assert api.ids(q="white paint roller", k=3)[0] == "T012"  # containing: within a longer query
    assert api.ids(q="painted", k=3)[:1] != ["T012"]  # whole words only
    in_category = api.search(q="drill", k=3, category="Tools > Power Tools")
    assert in_category["results"][0]["id"] == "T002" and in_category["rules_applied"] == ["category"]
    assert api.ids(q="drill", k=3)[0] != "T002"  # no category filter: not in effect
    # a pinned product outside the request's filters (Voltmark, not Ironridge) is not shown
    assert "T002" not in api.ids(q="drill", k=3, category="Tools > Power Tools", brand="Ironridge")


def test_rules_follow_the_corrected_query(api: Api) -> None:
    """A rule is written for the query spelt right; a typo corrected to it gets the rule."""
    api.put(rule("exact", "query_exact", "hammer", type="pin", product_id="T013", position=1))
    body = api.search(q="hamemr", k=3)
    assert body["correction"]["corrected"] == "hammer"
    assert body["results"][0]["id"] == "T013" and body["rules_applied"] == ["exact"]
    as_typed = api.search(q="hamemr", k=3, correct="false")
    assert as_typed["correction"] is None and not as_typed.get("rules_applied")


def test_versions_rollback_and_audit(api: Api) -> None:
    v1 = api.put(rule("one", "query_exact", "drill", type="pin", product_id="T020", position=1), note="first")
    v2 = api.put(rule("two", "query_exact", "drill", type="pin", product_id="T021", position=1))
    assert api.ids(q="drill", k=3)[0] == "T021"
    listed = api.admin.get(f"{RULES}/versions").json()
    assert [v["version"] for v in listed] == [2, 1] and listed[1]["note"] == "first"
    assert all(v["author"].startswith("key:") for v in listed)
    assert api.admin.get(f"{RULES}/versions/1").json()["rules"][0]["id"] == "one"
    resp = api.admin.post(f"{RULES}/rollback", json={"version": 1})
    assert resp.status_code == 200, resp.text
    v3 = resp.json()
    assert v3["version"] == 3 and v3["rollback_of"] == 1 and v3["digest"] == v1["digest"]
    assert api.ids(q="drill", k=3)[0] == "T020" and api.search(q="drill")["rules_version"] == 3
    assert api.admin.get(RULES).json()["version"] == 3
    assert api.admin.post(f"{RULES}/rollback", json={"version": 99}).status_code == 404

    entries = [json.loads(line) for line in api.audit_log.read_text().splitlines()]
    changes = [e for e in entries if e["action"].startswith("rules.")]
    assert [(e["action"], e["details"]["version"]) for e in changes] == [
        ("rules.publish", 1),
        ("rules.publish", 2),
        ("rules.rollback", 3),
    ]
    assert changes[1]["details"]["digest"] == v2["digest"] and changes[1]["details"]["rules"] == ["two"]
    assert changes[0]["actor"] == v1["author"]
    assert verify(api.audit_log).ok


def test_a_rule_change_shows_through_the_result_cache(api: Api) -> None:
    api.put(rule("a", "query_exact", "faucet", type="pin", product_id="T020", position=1))
    first = api.search(q="faucet", k=3)
    again = api.search(q="faucet", k=3)
    assert again["cached"] and first["results"] == again["results"]
    api.put(rule("b", "query_exact", "faucet", type="pin", product_id="T021", position=1))
    after = api.search(q="faucet", k=3)
    assert after["cached"]  # the same cached ranking...
    assert after["results"][0]["id"] == "T021" and after["rules_version"] == 2  # ...with the new rules
    api.put()  # no rules at all
    plain = api.search(q="faucet", k=3)
    assert "T021" not in [h["id"] for h in plain["results"]] and "rules_applied" not in plain


def test_pins_hold_in_relevance_order_only_and_hides_leave_totals_and_facets(api: Api) -> None:
    q = "drill hammer paint faucet stainless cordless"
    base = api.search(q=q, per_page=5, facets="brand")
    api.put(
        rule("pin", "query_exact", q, type="pin", product_id="T020", position=7),
        rule("hide", "query_exact", q, type="hide", product_id=base["results"][0]["id"]),
    )
    hidden_brand = BRAND[base["results"][0]["id"]].lower()
    page2 = api.search(q=q, per_page=5, page=2, facets="brand")
    assert page2["results"][1]["id"] == "T020"  # position 7 = page 2, second
    assert page2["total"] == base["total"]  # one hidden, one pinned in
    assert page2["facets"]["brand"][hidden_brand] == base["facets"]["brand"][hidden_brand] - 1
    assert page2["facets"]["brand"]["coolbreeze"] == base["facets"]["brand"].get("coolbreeze", 0) + 1
    by_price = api.search(q=q, per_page=20, sort="price_desc")
    assert by_price["total"] <= 20
    prices = [h["price"] for h in by_price["results"]]
    assert prices == sorted(prices, reverse=True)  # the asked order holds: the pin is placed by its price
    assert "T020" in [h["id"] for h in by_price["results"]]
    assert base["results"][0]["id"] not in [h["id"] for h in by_price["results"]]
    pages = [h["id"] for n in (1, 2, 3) for h in api.search(q=q, per_page=4, page=n)["results"]]
    assert pages == [h["id"] for h in api.search(q=q, per_page=12)["results"]]  # pages stay stable


def test_the_fast_path_and_the_route_answer_alike(api: Api) -> None:
    api.put(
        rule("pin", "query_contains", "drill", type="pin", product_id="T020", position=2),
        rule("bury", "query_contains", "drill", type="bury", match={"brand": "Voltmark"}),
    )
    params = [("q", "cordless drill"), ("k", "6"), ("explain", "true")]
    fast = api.shopper.get("/v1/search", params=params).json()
    route = api.shopper.get("/v1/search", params=[("q", "decoy"), *params[1:], ("q", "cordless drill")]).json()
    for body in (fast, route):
        body.pop("timings_ms")
        body.pop("cached")
    assert fast == route
    assert fast["results"][1]["rules"] == ["pin:pin"]


def test_every_worker_applies_a_new_version(
    server_process: Callable[..., Any], tiny_static_artifacts: Path, tmp_path: Path
) -> None:
    """``shoprec serve --workers 2``: a version published through one worker is applied by
    both (``rules_check_s=0``: each search looks at the folder, so no waiting is involved)."""
    store = KeyStore(tmp_path / "keys.json", time.time, iterations=1)
    _, key = store.create("merchandiser", ["admin", "search"])
    settings: dict[str, Any] = {
        **FULL_QUALITY,
        "artifacts": tiny_static_artifacts,
        "data_dir": tmp_path,
        "keys_file": tmp_path / "keys.json",
        "require_signature": False,
        "rules_check_s": 0,
        "workers": 2,
        "port": 0,
        "log_level": "info",
    }
    server = server_process(**settings, command=(sys.executable, "-m", "shoprec.cli", "serve"))
    # a connection per request, so the kernel hands them to either worker
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=server.url, timeout=30, limits=limits, headers={"X-API-Key": key}) as client:
        deadline = time.monotonic() + 60
        ready = 0
        while ready < 20 and time.monotonic() < deadline:  # both workers loaded: 20 answers in a row
            if client.get("/v1/search", params={"q": "drill"}).status_code == 200:
                ready += 1
            else:  # a worker still loading its model: poll again shortly, within the deadline
                ready = 0
                time.sleep(0.05)
        assert ready == 20, server.tail()
        pin = rule("ac", "query_exact", "drill", type="pin", product_id="T020", position=1)
        assert client.put(RULES, json={"rules": [pin]}).status_code == 200
        for _ in range(30):
            body = client.get("/v1/search", params={"q": "drill", "k": 3}).json()
            assert body["results"][0]["id"] == "T020" and body["rules_version"] == 1
