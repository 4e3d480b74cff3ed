"""Evaluation history and error analysis, from the reports kept in each ``version.json``.

:func:`analyze` compares a version (default: the current one) with the one before it (the
pointer's previous version, else the version pushed before it) on their latest evaluations
over the same validation set: the queries that lost most NDCG@10, with both versions' top
results, and the version's lowest-NDCG queries with the titles it returned. :func:`to_markdown`
and :func:`to_html` render the history and the analysis; every value is escaped in HTML.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoprec.errors import RequestError
from shoprec.registry.store import Registry

HISTORY_COLUMNS = ("version", "current", "evaluated", "context", "validation", "search ndcg@10", "mrr", "queries",
                   "recommend ndcg@10", "p99 ms")  # fmt: skip


@dataclass
class Analysis:
    version: str | None
    previous: str | None
    validation: str | None
    history: list[dict[str, Any]] = field(default_factory=list)
    lost: list[dict[str, Any]] = field(default_factory=list)
    lowest: list[dict[str, Any]] = field(default_factory=list)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def history_rows(registry: Registry) -> list[dict[str, Any]]:
    """One row per evaluation of every version, oldest push first."""
    current = registry.current_id()
    rows = []
    for rec in registry.versions():
        evals = rec.get("evaluations") or [None]
        for ev in evals:
            search = (ev or {}).get("search") or {}
            rec_m = (ev or {}).get("recommend") or {}
            p99 = ((ev or {}).get("bench") or {}).get("p99_ms", search.get("p99_ms"))
            rows.append(
                {
                    "version": rec["id"],
                    "current": "*" if rec["id"] == current else "",
                    "evaluated": (ev or {}).get("evaluated_at"),
                    "context": (ev or {}).get("context"),
                    "validation": (ev or {}).get("validation"),
                    "search ndcg@10": search.get("ndcg@10"),
                    "mrr": search.get("mrr"),
                    "queries": search.get("queries"),
                    "recommend ndcg@10": rec_m.get("ndcg@10"),
                    "p99 ms": p99,
                }
            )
    return rows


def _latest_by_validation(record: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for ev in record.get("evaluations", []):
        out[str(ev.get("validation"))] = ev  # later evaluations overwrite earlier ones
    return out


def _key(row: Mapping[str, Any]) -> tuple[str, str | None]:
    return str(row["query"]), row.get("user_id")


def analyze(registry: Registry, version: str | None = None, *, limit: int = 10) -> Analysis:
    """The error analysis of ``version`` (default: current) against the version before it."""
    if limit < 1:
        raise RequestError(f"limit must be >= 1, got {limit}")
    records = {r["id"]: r for r in registry.versions()}
    pointer = registry.pointer()
    if version is None:
        version = pointer.version if pointer is not None else (list(records)[-1] if records else None)
    analysis = Analysis(version, None, None, history_rows(registry))
    if version is None:
        return analysis
    if version not in records:
        registry.read_version(version)  # NotFoundError naming it
    previous: str | None = None
    if pointer is not None and pointer.version == version and pointer.previous:
        previous = pointer.previous[0]
    else:
        order = list(records)
        i = order.index(version)
        previous = order[i - 1] if i > 0 else None
    analysis.previous = previous
    mine = _latest_by_validation(records[version])
    theirs = _latest_by_validation(records[previous]) if previous in records else {}
    common = [label for label in mine if label in theirs]
    label = common[-1] if common else (list(mine)[-1] if mine else None)
    analysis.validation = label
    if label is None:
        return analysis
    rows = mine[label].get("per_query", [])
    analysis.lowest = sorted(rows, key=lambda r: (r["ndcg@10"], r["query"]))[:limit]
    if label in theirs:
        before = {_key(r): r for r in theirs[label].get("per_query", [])}
        lost = []
        for r in rows:
            b = before.get(_key(r))
            if b is not None and b["ndcg@10"] - r["ndcg@10"] > 1e-9:
                lost.append({"query": r["query"], "user_id": r.get("user_id"), "before": b, "after": r,
                             "loss": round(b["ndcg@10"] - r["ndcg@10"], 4)})  # fmt: skip
        analysis.lost = sorted(lost, key=lambda x: (-x["loss"], x["query"]))[:limit]
    return analysis


def _titles(row: Mapping[str, Any]) -> list[str]:
    titles = row.get("titles") or []
    return [t or pid for pid, t in zip(row.get("top", []), titles, strict=False)] or list(row.get("top", []))


def _lost_table(a: Analysis) -> tuple[tuple[str, ...], list[list[Any]]]:
    """Columns and rows of the queries that lost most against the previous version."""
    columns = ("query", "user", "before", "after", "loss", f"top results {a.previous}", f"top results {a.version}")
    rows = [
        [
            x["query"],
            x["user_id"],
            x["before"]["ndcg@10"],
            x["after"]["ndcg@10"],
            x["loss"],
            "; ".join(_titles(x["before"])),
            "; ".join(_titles(x["after"])),
        ]
        for x in a.lost
    ]
    return columns, rows


def _lowest_table(a: Analysis) -> tuple[tuple[str, ...], list[list[Any]]]:
    """Columns and rows of the lowest-NDCG queries with what was returned for them."""
    columns = ("query", "user", "ndcg@10", "returned")
    return columns, [[r["query"], r.get("user_id"), r["ndcg@10"], "; ".join(_titles(r))] for r in a.lowest]


def _md_cell(v: Any) -> str:
    return _fmt(v).replace("|", "\\|").replace("\n", " ")


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return out


def to_markdown(a: Analysis) -> str:
    lines = ["# Evaluation report", "", "## History", ""]
    lines += _md_table(HISTORY_COLUMNS, [[r[c] for c in HISTORY_COLUMNS] for r in a.history])
    lines += ["", f"## Error analysis: {a.version or '–'} (vs {a.previous or 'no previous version'})", ""]
    lines += [f"Validation set: {a.validation or 'none evaluated'}", ""]
    lines += [f"### Queries that lost most NDCG@10 against {a.previous or '–'}", ""]
    if a.lost:
        lines += _md_table(*_lost_table(a))
    else:
        lines.append("No query lost NDCG@10." if a.previous else "No previous version to compare with.")
    lines += ["", "### Lowest-NDCG@10 queries", ""]
    lines += _md_table(*_lowest_table(a))
    return "\n".join(lines) + "\n"


def _html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(a: Analysis) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>shoprec evaluation report</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;vertical-align:top}</style></head><body>",
        "<h1>Evaluation report</h1><h2>History</h2>",
        _html_table(HISTORY_COLUMNS, [[r[c] for c in HISTORY_COLUMNS] for r in a.history]),
        f"<h2>Error analysis: {e(a.version or '–')} (vs {e(a.previous or 'no previous version')})</h2>",
        f"<p>Validation set: {e(a.validation or 'none evaluated')}</p>",
        f"<h3>Queries that lost most NDCG@10 against {e(a.previous or '–')}</h3>",
    ]
    if a.lost:
        parts.append(_html_table(*_lost_table(a)))
    else:
        parts.append(f"<p>{'No query lost NDCG@10.' if a.previous else 'No previous version to compare with.'}</p>")
    parts.append("<h3>Lowest-NDCG@10 queries</h3>")
    parts.append(_html_table(*_lowest_table(a)))
    parts.append("</body></html>\n")
    return "".join(parts)


def history_table(a: Analysis) -> str:
    """The history as a plain-text table for the terminal."""
    rows = [[_fmt(r[c]) for c in HISTORY_COLUMNS] for r in a.history]
    widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(HISTORY_COLUMNS)]
    out = ["  ".join(c.ljust(w) for c, w in zip(HISTORY_COLUMNS, widths, strict=True))]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)
