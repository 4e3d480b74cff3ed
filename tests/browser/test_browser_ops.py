"""The ops page at ``/ops`` in chromium: the degradation level it shows follows a burst (the
pressure set explicitly on the admission gate, as tests/integration/test_http_overload.py does),
and an admin key entered in the page rolls the registry back and promotes again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from shoprec.registry.store import Registry

LADDER = {
    "max_in_flight": 4,
    "quality_loss_budget": 1.0,
    "ladder_step_down_pressure": 0.6,
    "ladder_step_up_pressure": 0.1,
    "ladder_step_up_hold_s": 0.0,
    "ladder_utilization_target": 0.0,  # the pressure rule alone
    "shed_loop_lag_ms": 0,  # only the pressure set below may step down
}


def test_the_ops_page_shows_the_level_step_down_under_a_burst_and_back(
    serve: Any, tiny_static_artifacts: Path, page: Page
) -> None:
    live, headers = serve(artifacts=tiny_static_artifacts, **LADDER)
    gate = live.app.state.overload.gate
    with live.client(headers=headers) as api:

        def search(query: str) -> str:  # distinct queries: a cached answer would skip admission
            r = api.get("/v1/search", params={"q": query})
            assert r.status_code == 200, r.text
            return str(r.json()["degradation_level"])

        assert search("drill") == "full"  # the first search takes up the version's measured ladder
        levels = [level.name for level in gate.chooser.policy.levels]
        assert len(levels) > 1

        page.goto(live.url + "/ops")
        expect(page.locator("#level")).to_have_text(levels[0])
        expect(page.locator("#ladder > li")).to_have_text(levels)
        expect(page.locator("#model-version")).to_have_text(live.app.state.services.runtime.require().version)

        gate.slots.running = 3  # the burst: three of four slots busy while these searches arrive
        try:
            burst = [search(f"drill {i}") for i in range(5)]
        finally:
            gate.slots.running = 0
        assert burst[-1] == levels[-1]
        expect(page.locator("#level")).to_have_text(levels[-1])
        expect(page.locator("#ladder > li[aria-current=true]")).to_have_text(levels[-1])
        expect(page.locator("#throughput")).not_to_have_text("0.0")
        expect(page.locator("#p99")).to_contain_text("ms")

        calm = [search(f"hammer {i}") for i in range(len(levels) + 1)]  # one level up per calm search
        assert calm[-1] == levels[0]
        expect(page.locator("#level")).to_have_text(levels[0])


def test_rollback_and_promote_with_an_admin_key(
    serve: Any, tiny_static_artifacts: Path, tmp_path: Path, page: Page
) -> None:
    registry = Registry(tmp_path / "registry")
    for version in ("v1", "v2"):
        registry.push(tiny_static_artifacts, version_id=version)
        registry.set_current(version, action="promote", gates="test")
    live, headers = serve(registry=registry.root, registry_poll_s=3600)
    page.goto(live.url + "/ops")
    expect(page.locator("#model-version")).to_have_text("v2")
    status = page.locator("#registry-status")
    expect(status).to_contain_text("Enter a key with the admin role")
    expect(page.get_by_role("button", name="Roll back to the previous version")).to_be_disabled()

    page.get_by_label("Admin API key").fill(headers["X-API-Key"])
    page.get_by_label("Admin API key").press("Enter")
    expect(status).to_contain_text("Current: v2 · serving: v2 · previous: v1")
    rows = page.locator("#versions tbody tr")
    expect(rows.filter(has_text="v2").locator("td").nth(3)).to_have_text("current")
    expect(rows.filter(has_text="v1").locator("td").nth(3)).to_have_text("served before")

    page.get_by_role("button", name="Roll back to the previous version").click()
    expect(status).to_contain_text("Rolled back. Current: v1 · serving: v1")
    expect(page.locator("#model-version")).to_have_text("v1")
    expect(page.locator("#history tbody tr").first).to_contain_text("rollback")

    page.get_by_role("button", name="Promote v2").click()
    expect(status).to_contain_text("Promoted v2. Current: v2 · serving: v2 · previous: v1")
    expect(page.locator("#model-version")).to_have_text("v2")
    assert [row["action"] for row in registry.history()][-2:] == ["rollback", "promote"]

    page.get_by_role("button", name="Forget").click()
    expect(status).to_contain_text("Enter a key with the admin role")
