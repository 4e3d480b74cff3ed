"""Evaluation history and error analysis on a hand-made registry with known answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shoprec import artifacts
from shoprec.registry import report
from shoprec.registry.store import Registry


def _row(query: str, ndcg: float, top: list[str]) -> dict[str, Any]:
    return {"query": query, "user_id": None, "ndcg@10": ndcg, "top": top, "titles": [f"Title {t}" for t in top]}


def _eval(label: str, ndcg: float, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "evaluated_at": "2026-01-01T00:00:00Z",
        "context": "push",
        "validation": label,
        "search": {"ndcg@10": ndcg, "mrr": 0.5, "queries": len(rows), "p50_ms": 1.0, "p99_ms": 2.0},
        "recommend": None,
        "per_query": rows,
    }


def _push(reg: Registry, tmp: Path, vid: str, evaluation: dict[str, Any]) -> None:
    folder = tmp / vid
    folder.mkdir()
    (folder / "catalog.jsonl").write_text(vid)
    artifacts.write_manifest(folder, model_id=vid, config={}, metrics={})
    reg.push(folder, version_id=vid)
    reg.add_evaluation(vid, evaluation)


def make_registry(tmp_path: Path) -> Registry:
    reg = Registry(tmp_path / "reg", clock=iter(range(1_800_000_000, 1_800_001_000)).__next__)
    old = [_row("drill", 1.0, ["A", "B"]), _row("sofa", 0.8, ["S"]), _row("tap", 0.3, ["T"]), _row("lamp", 0.5, ["L"])]
    new = [_row("drill", 0.2, ["X", "A"]), _row("sofa", 0.7, ["S2"]), _row("tap", 0.9, ["T"]), _row("lamp", 0.1, ["Y"])]
    _push(reg, tmp_path, "v1", _eval("stored:v1", 0.65, old))
    _push(reg, tmp_path, "v2", _eval("stored:v1", 0.475, new))
    reg.set_current("v1", action="promote")
    reg.set_current("v2", action="promote")
    return reg


def test_lost_and_lowest_queries(tmp_path: Path) -> None:
    a = report.analyze(make_registry(tmp_path), limit=3)
    assert (a.version, a.previous, a.validation) == ("v2", "v1", "stored:v1")
    # losses: drill 0.8, lamp 0.4, sofa 0.1; tap improved and is not listed
    assert [(x["query"], x["loss"]) for x in a.lost] == [("drill", 0.8), ("lamp", 0.4), ("sofa", 0.1)]
    assert a.lost[0]["before"]["top"] == ["A", "B"] and a.lost[0]["after"]["top"] == ["X", "A"]
    assert [r["query"] for r in a.lowest] == ["lamp", "drill", "sofa"]
    assert [r["version"] for r in a.history] == ["v1", "v2"] and a.history[1]["current"] == "*"


def test_markdown_and_html_show_both_versions_results(tmp_path: Path) -> None:
    a = report.analyze(make_registry(tmp_path))
    md = report.to_markdown(a)
    assert "## History" in md and "| v2 | * |" in md
    lost_section = md.split("### Queries that lost most")[1].split("### Lowest")[0]
    assert "| drill |" in lost_section and "Title A; Title B" in lost_section and "Title X; Title A" in lost_section
    assert "| tap |" not in lost_section
    lowest_section = md.split("### Lowest-NDCG@10 queries")[1]
    assert lowest_section.index("| lamp |") < lowest_section.index("| drill |") < lowest_section.index("| tap |")
    assert "Title Y" in lowest_section
    page = report.to_html(a)
    assert page.startswith("<!doctype html>") and "<td>drill</td>" in page and "<td>0.8000</td>" in page


def test_html_escapes_queries_and_titles(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    _push(reg, tmp_path, "v1", _eval("j", 0.0, [_row("<script>x</script>", 0.0, ["<b>"])]))
    page = report.to_html(report.analyze(reg))
    assert "<script>" not in page and "&lt;script&gt;" in page and "Title &lt;b&gt;" in page
    assert "No previous version to compare with." in page


def test_analysis_of_an_older_version_compares_with_the_one_pushed_before(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    a = report.analyze(reg, "v1")
    assert (a.version, a.previous, a.lost) == ("v1", None, [])
    assert [r["query"] for r in a.lowest][:1] == ["tap"]


def test_an_empty_registry_reports_nothing(tmp_path: Path) -> None:
    a = report.analyze(Registry(tmp_path / "empty"))
    assert a.version is None and a.history == [] and "Evaluation report" in report.to_markdown(a)
