"""Load products, events and relevance judgments from CSV, TSV, JSONL or Parquet files,
and write them back atomically; read the sequence and click-log files of the recommender
evaluations (their formats are parsed by the pure :mod:`shoprec.core.sequences` and
:mod:`shoprec.core.sessions`).

The format comes from the file's extension: ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson`` or
``.parquet``. Columns are found by common aliases (``product_id`` for ``id``, ``SessionId``
for ``user_id`` ...) unless a column map (canonical field -> the file's column) says
otherwise. For JSONL the first record's keys play the part of the header (it must hold
the required fields); later records may leave optional fields out.

Every bad row either raises :class:`~shoprec.errors.RowError` naming the file and the
1-based physical line (the CSV header is line 1; Parquet rows are numbered from 1 and
the message says ``row N``), or, with ``skip_bad_rows=True``, is skipped and reported in
the :class:`~shoprec.types.LoadReport`: nothing is dropped silently.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
from collections.abc import Callable, Generator, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

from shoprec.atomicio import atomic_text
from shoprec.core.sequences import MIN_EVALUABLE_ITEMS, parse_sequences
from shoprec.core.sessions import parse_clicks
from shoprec.core.synonyms import Synonyms
from shoprec.errors import DataError, DependencyError, RowError
from shoprec.types import EVENT_TYPES, Event, EventType, Judgment, LoadReport, Product

__all__ = [
    "MAX_PROBLEMS",
    "SUPPORTED_SUFFIXES",
    "load_events",
    "load_judgments",
    "load_products",
    "parse_column_map",
    "write_events_csv",
    "write_judgments_csv",
    "write_products_jsonl",
]

Format = Literal["csv", "tsv", "jsonl", "parquet"]

SUPPORTED_SUFFIXES: Mapping[str, Format] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}

#: At most this many problem messages are kept in a LoadReport; the counts stay exact.
MAX_PROBLEMS = 1000

_T = TypeVar("_T")
_Raw = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Schema:
    kind: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    aliases: Mapping[str, tuple[str, ...]]

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.optional


_PRODUCTS = _Schema(
    kind="products",
    required=("id", "title"),
    optional=("description", "category", "brand", "price", "in_stock", "attributes"),
    aliases={
        "id": ("id", "product_id", "item_id", "sku", "product_uid"),
        "title": ("title", "name", "product_title"),
        "description": ("description", "product_description", "desc"),
        "category": ("category", "category_path"),
        "brand": ("brand",),
        "price": ("price",),
        "in_stock": ("in_stock", "instock", "available"),
        "attributes": ("attributes", "attrs"),
    },
)

_EVENTS = _Schema(
    kind="events",
    required=("user_id", "item_id", "timestamp"),
    optional=("type", "query"),
    aliases={
        "user_id": ("user_id", "user", "session_id", "SessionId"),
        "item_id": ("item_id", "product_id", "ItemId"),
        "timestamp": ("timestamp", "time", "ts", "Time"),
        "type": ("type", "event", "event_type"),
        "query": ("query", "search_query"),
    },
)

_JUDGMENTS = _Schema(
    kind="judgments",
    required=("query", "product_id", "relevance"),
    optional=(),
    aliases={
        "query": ("query", "search_term"),
        "product_id": ("product_id", "item_id", "id", "product_uid"),
        "relevance": ("relevance", "grade", "label"),
    },
)


class _BadRow(Exception):
    """A row-level problem; turned into a RowError or a skip by the load loop, never escapes."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


# ---------------------------------------------------------------------------- public API


def load_products(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    skip_bad_rows: bool = False,
) -> tuple[list[Product], LoadReport]:
    """Load a product catalog. Required fields: ``id`` and ``title``.

    Optional: ``description``, ``category`` (a path such as ``Tools > Hand Tools``),
    ``brand``, ``price`` (a number >= 0; empty means unknown), ``in_stock``
    (true/false/1/0/yes/no; empty means true) and ``attributes`` (a JSON object, or in
    CSV ``key=value;key=value``). A repeated id keeps the first row and is counted in
    ``duplicates``. Other columns are ignored.
    """
    return _load(path, _PRODUCTS, columns, skip_bad_rows, _parse_product, lambda p: p.id)


def load_events(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    skip_bad_rows: bool = False,
) -> tuple[list[Event], LoadReport]:
    """Load interaction events. Required fields: ``user_id``, ``item_id``, ``timestamp``.

    ``timestamp`` is Unix seconds or ISO 8601 (naive times are taken as UTC). ``type`` is
    one of :data:`~shoprec.types.EVENT_TYPES`; a file without a type column holds clicks.
    ``query`` (optional) is the search that led to the event. Events are never deduplicated.
    """
    return _load(path, _EVENTS, columns, skip_bad_rows, _parse_event, None)


def load_judgments(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    skip_bad_rows: bool = False,
) -> tuple[list[Judgment], LoadReport]:
    """Load relevance judgments: ``query``, ``product_id`` and a numeric ``relevance``.

    A repeated (query, product_id) pair keeps the first row and is counted in ``duplicates``.
    """
    return _load(path, _JUDGMENTS, columns, skip_bad_rows, _parse_judgment, lambda j: (j.query, j.product_id))


def parse_column_map(specs: Sequence[str]) -> dict[str, str]:
    """Parse CLI column specs: ``["id=product_id", "title=name"]`` -> ``{"id": "product_id", ...}``.

    Raises :class:`~shoprec.errors.DataError` on a spec without ``=``, with an empty side,
    or naming the same field twice. Field names are checked by the loader that uses the map.
    """
    out: dict[str, str] = {}
    for spec in specs:
        field, sep, column = spec.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise DataError(f"bad column spec {spec!r}: expected field=column, e.g. id=product_id")
        if field in out:
            raise DataError(f"bad column spec {spec!r}: field {field!r} is mapped twice")
        out[field] = column
    return out


def write_products_jsonl(products: Iterable[Product], path: str | Path) -> Path:
    """Write products as JSON lines (UTF-8, one object a line), atomically. Returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_text(target) as f:
        for p in products:
            f.write(json.dumps(product_to_json(p), ensure_ascii=False))
            f.write("\n")
    return target


def write_events_csv(events: Iterable[Event], path: str | Path) -> Path:
    """Write events as CSV ``user_id,item_id,type,timestamp,query``, atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_text(target, newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("user_id", "item_id", "type", "timestamp", "query"))
        for e in events:
            w.writerow((e.user_id, e.item_id, e.type, _number(e.timestamp), e.query or ""))
    return target


def write_judgments_csv(judgments: Iterable[Judgment], path: str | Path) -> Path:
    """Write judgments as CSV ``query,product_id,relevance``, atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_text(target, newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("query", "product_id", "relevance"))
        for j in judgments:
            w.writerow((j.query, j.product_id, _number(j.relevance)))
    return target


def write_events_jsonl(events: Iterable[Event], path: str | Path) -> Path:
    """Write events as compact JSON lines (:func:`event_to_json`), atomically, readable by the
    owner only (0600, as the event log): user histories are personal data."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_text(target, mode=0o600) as f:
        for e in events:
            f.write(json.dumps(event_to_json(e), ensure_ascii=False, separators=(",", ":")) + "\n")
    return target


# ---------------------------------------------------------------- sequences and click logs


def read_sequences(
    path: str | Path, *, min_items: int = MIN_EVALUABLE_ITEMS
) -> tuple[dict[str, list[str]], LoadReport]:
    """Read a ``user_id item item ...`` sequences file (the format and its errors:
    :func:`shoprec.core.sequences.parse_sequences`); returns the users and a report."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return parse_sequences(f, str(path), min_items=min_items)
    except OSError as exc:
        raise DataError(f"{path}: cannot read sequences: {exc}") from exc


def read_clicks(path: str | Path) -> tuple[dict[str, list[str]], LoadReport]:
    """Read a tab-separated ``SessionId ItemId Time`` click log (the format and its errors:
    :func:`shoprec.core.sessions.parse_clicks`) into sessions and a report."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return parse_clicks(f, str(path))
    except OSError as exc:
        raise DataError(f"{path}: cannot read clicks: {exc}") from exc


# ---------------------------------------------------------------------------- the load loop


def read_synonyms(path: str | Path) -> Synonyms:
    """A shop's synonyms file (:mod:`shoprec.core.synonyms`); a malformed line is a
    :class:`RowError` naming the file and the line, a missing file a :class:`DataError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the synonyms file {p}: {exc}") from None
    return Synonyms.parse(text.splitlines(), source=str(p))


def _load(
    path: str | Path,
    schema: _Schema,
    columns: Mapping[str, str] | None,
    skip_bad_rows: bool,
    parse: Callable[[_Raw], _T],
    key: Callable[[_T], Hashable] | None,
) -> tuple[list[_T], LoadReport]:
    name = str(path)
    p = Path(path)
    fmt = SUPPORTED_SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        known = ", ".join(SUPPORTED_SUFFIXES)
        raise DataError(f"{name}: unknown file type {p.suffix or '(none)'!r} (expected {known})")
    if not p.exists():
        raise DataError(f"{name}: no such file")
    if not p.is_file():
        raise DataError(f"{name}: not a regular file")
    if columns is not None:
        unknown = [f for f in columns if f not in schema.fields]
        if unknown:
            raise DataError(
                f"{name}: unknown {schema.kind} field(s) in the column map: {', '.join(unknown)}"
                f" (known: {', '.join(schema.fields)})"
            )

    unit = "row" if fmt == "parquet" else "line"
    out: list[_T] = []
    seen: dict[Hashable, int] = {}
    rows = duplicates = skipped = omitted = 0
    problems: list[str] = []

    def note(message: str) -> None:
        nonlocal omitted
        if len(problems) < MAX_PROBLEMS:
            problems.append(message)
        else:
            omitted += 1

    with closing(_rows(p, name, fmt, schema, columns)) as source:
        for line, raw, problem in source:
            rows += 1
            item: _T | None = None
            if problem is None and raw is not None:
                try:
                    item = parse(raw)
                except _BadRow as e:
                    problem = e.problem
            if item is None:
                text = problem or "unreadable row"
                if unit == "row":
                    text = f"row {line}: {text}"
                if not skip_bad_rows:
                    raise RowError(name, line, text)
                skipped += 1
                note(f"{name}:{line}: {text}")
                continue
            if key is not None:
                k = key(item)
                first = seen.get(k)
                if first is not None:
                    duplicates += 1
                    what = f"id {k}" if schema is _PRODUCTS else f"judgment {k!r}"
                    note(f"{name}:{line}: duplicate {what} (first seen on {unit} {first})")
                    continue
                seen[k] = line
            out.append(item)

    if omitted:
        problems.append(f"{name}: {omitted} more problems not listed")
    report = LoadReport(
        path=name,
        rows=rows,
        kept=len(out),
        duplicates=duplicates,
        skipped=skipped,
        problems=tuple(problems),
    )
    return out, report


def _resolve(
    name: str,
    schema: _Schema,
    present: Sequence[str],
    columns: Mapping[str, str] | None,
    *,
    strict: bool = True,
) -> dict[str, str]:
    """Canonical field -> the file's column, for every field the file has.

    ``strict`` raises DataError for a missing required or mapped column; without it such
    fields are left out (their value reads as missing).
    """
    by_fold: dict[str, str] = {}
    for col in present:
        by_fold.setdefault(col.casefold(), col)
    shown = ", ".join(present) or "(none)"
    out: dict[str, str] = {}
    for field in schema.fields:
        if columns is not None and field in columns:
            col = columns[field]
            if col not in present:
                if not strict:
                    continue
                raise DataError(
                    f"{name}: column {col!r} (mapped to {schema.kind} field {field!r}) not found;"
                    f" columns present: {shown}"
                )
            out[field] = col
            continue
        for alias in schema.aliases[field]:
            hit = by_fold.get(alias.casefold())
            if hit is not None:
                out[field] = hit
                break
    for field in schema.required:
        if strict and field not in out:
            raise DataError(
                f"{name}: missing required column {field!r} for {schema.kind}"
                f" (looked for {', '.join(schema.aliases[field])}); columns present: {shown}."
                f" Map it explicitly, e.g. {field}=<column>"
            )
    return out


# ---------------------------------------------------------------------------- readers

_RowIter = Generator[tuple[int, _Raw | None, str | None], None, None]


def _rows(p: Path, name: str, fmt: Format, schema: _Schema, columns: Mapping[str, str] | None) -> _RowIter:
    if fmt == "parquet":
        return _parquet_rows(p, name, schema, columns)
    if fmt == "jsonl":
        return _jsonl_rows(p, name, schema, columns)
    return _delimited_rows(p, name, "\t" if fmt == "tsv" else ",", schema, columns)


class _Lines:
    """Physical lines of a UTF-8 file, BOM dropped; remembers which ones failed to decode."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.bad: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        for number, raw in enumerate(self._f, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                self.bad[number] = f"invalid UTF-8 at byte {e.start} of the line ({e.reason})"
                yield raw.decode("utf-8", "replace")


def _open_binary(p: Path, name: str) -> IO[bytes]:
    try:
        return p.open("rb")
    except OSError as e:
        raise DataError(f"{name}: cannot open: {e.strerror or e}") from e


def _delimited_rows(p: Path, name: str, delimiter: str, schema: _Schema, columns: Mapping[str, str] | None) -> _RowIter:
    with _open_binary(p, name) as f:
        lines = _Lines(f)
        reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as e:
            raise RowError(name, reader.line_num, f"malformed header: {e}") from e
        if header is None:
            raise DataError(f"{name}: empty file (no header row)")
        if lines.bad:
            first = min(lines.bad)
            raise RowError(name, first, f"header: {lines.bad[first]}")
        header = [h.strip() for h in header]
        resolved = _resolve(name, schema, header, columns)
        index = [(field, header.index(col)) for field, col in resolved.items()]
        width = len(header)
        end = reader.line_num
        while True:
            start = end + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                end = reader.line_num
                yield start, None, f"malformed CSV: {e}"
                continue
            end = reader.line_num
            if not row:
                continue  # a blank line
            if lines.bad:
                bad = [n for n in range(start, end + 1) if n in lines.bad]
                if bad:
                    yield start, None, lines.bad[bad[0]]
                    continue
            if len(row) != width:
                yield start, None, f"expected {width} fields, found {len(row)}"
                continue
            yield start, {field: row[i] for field, i in index}, None


def _jsonl_rows(p: Path, name: str, schema: _Schema, columns: Mapping[str, str] | None) -> _RowIter:
    # Keys may differ from record to record: resolve each distinct key set once. The first
    # record plays the header: it must hold the required fields.
    resolutions: dict[tuple[str, ...], dict[str, str]] = {}
    first = True
    with _open_binary(p, name) as f:
        lines = _Lines(f)
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            if number in lines.bad:
                yield number, None, lines.bad[number]
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                yield number, None, f"malformed JSON: {e.msg} (column {e.colno})"
                continue
            if not isinstance(obj, dict):
                yield number, None, f"expected a JSON object, found {type(obj).__name__}"
                continue
            keys = tuple(obj)
            resolved = resolutions.get(keys)
            if resolved is None:
                resolved = _resolve(name, schema, keys, columns, strict=first)
                first = False
                if len(resolutions) < 1000:
                    resolutions[keys] = resolved
            yield number, {field: obj[col] for field, col in resolved.items()}, None


def _parquet_rows(p: Path, name: str, schema: _Schema, columns: Mapping[str, str] | None) -> _RowIter:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - pyarrow is a core dependency
        raise DependencyError("reading .parquet files needs pyarrow: pip install pyarrow") from e
    try:
        pf = pq.ParquetFile(p)
        present = list(pf.schema_arrow.names)
        resolved = _resolve(name, schema, present, columns)
        table = pf.read(columns=list(dict.fromkeys(resolved.values())))
    except DataError:
        raise
    except Exception as e:  # pyarrow raises several unrelated types for unreadable files
        raise DataError(f"{name}: not a readable Parquet file: {e}") from e
    data = {field: table.column(col).to_pylist() for field, col in resolved.items()}
    for i in range(table.num_rows):
        yield i + 1, {field: values[i] for field, values in data.items()}, None


# ---------------------------------------------------------------------------- row parsing


def _text(raw: _Raw, field: str) -> str:
    value = raw.get(field)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int | float):
        return str(value)
    raise _BadRow(f"{field} must be text, found {type(value).__name__}")


def _required_text(raw: _Raw, field: str) -> str:
    value = _text(raw, field)
    if not value:
        raise _BadRow(f"empty {field}")
    return value


def _finite(value: Any, field: str) -> float:
    if isinstance(value, bool):
        raise _BadRow(f"non-numeric {field} {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _BadRow(f"non-numeric {field} {value!r}") from None
    else:
        raise _BadRow(f"non-numeric {field} {value!r}")
    if not math.isfinite(number):
        raise _BadRow(f"{field} must be finite, found {value!r}")
    return number


def _price(raw: _Raw) -> float | None:
    value = raw.get("price")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    price = _finite(value, "price")
    if price < 0:
        raise _BadRow(f"negative price {value!r}")
    return price


_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def _in_stock(raw: _Raw) -> bool:
    value = raw.get("in_stock")
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if not word or word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _BadRow(f"bad in_stock {value!r} (expected true/false, 1/0 or yes/no)")


def _scalar_text(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise _BadRow(f"attribute {key!r} must be a scalar, found {type(value).__name__}")


def _attributes(raw: _Raw) -> dict[str, str]:
    value = raw.get("attributes")
    if value is None:
        return {}
    if isinstance(value, list) and all(isinstance(kv, tuple | list) and len(kv) == 2 for kv in value):
        value = dict(value)  # a Parquet map column reads as (key, value) pairs
    if isinstance(value, dict):
        return {str(k): _scalar_text(str(k), v) for k, v in value.items() if v is not None}
    if not isinstance(value, str):
        raise _BadRow(f"bad attributes: expected an object, found {type(value).__name__}")
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise _BadRow(f"bad attributes JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(obj, dict):
            raise _BadRow("bad attributes JSON: expected an object")
        return {str(k): _scalar_text(str(k), v) for k, v in obj.items() if v is not None}
    out: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            raise _BadRow(f"bad attributes {value!r} (expected a JSON object or key=value;key=value)")
        out[k.strip()] = v.strip()
    return out


def _parse_product(raw: _Raw) -> Product:
    return Product(
        id=_required_text(raw, "id"),
        title=_required_text(raw, "title"),
        description=_text(raw, "description"),
        category=_text(raw, "category"),
        brand=_text(raw, "brand"),
        price=_price(raw),
        in_stock=_in_stock(raw),
        attributes=_attributes(raw),
    )


def _timestamp(raw: _Raw) -> float:
    value = raw.get("timestamp")
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return _finite(value, "timestamp")
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return _finite(float(text), "timestamp")
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _BadRow(f"unparsable timestamp {value!r}") from None
    else:
        raise _BadRow(f"unparsable timestamp {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _event_type(raw: _Raw) -> EventType:
    if "type" not in raw:
        return "click"
    value = raw["type"]
    word = value.strip().lower() if isinstance(value, str) else value
    for t in EVENT_TYPES:
        if word == t:
            return t
    raise _BadRow(f"invalid event type {value!r} (expected one of {', '.join(EVENT_TYPES)})")


def _parse_event(raw: _Raw) -> Event:
    return Event(
        user_id=_required_text(raw, "user_id"),
        item_id=_required_text(raw, "item_id"),
        type=_event_type(raw),
        timestamp=_timestamp(raw),
        query=_text(raw, "query") or None,
    )


def _parse_judgment(raw: _Raw) -> Judgment:
    return Judgment(
        query=_required_text(raw, "query"),
        product_id=_required_text(raw, "product_id"),
        relevance=_finite(raw.get("relevance"), "relevance"),
    )


# ---------------------------------------------------------------------------- writing


def product_to_json(p: Product) -> dict[str, Any]:
    """The JSON record of a product (products.jsonl, artifacts' catalog.jsonl, the API)."""
    return {
        "id": p.id,
        "title": p.title,
        "description": p.description,
        "category": p.category,
        "brand": p.brand,
        "price": p.price,
        "in_stock": p.in_stock,
        "attributes": dict(p.attributes),
    }


def event_to_json(e: Event) -> dict[str, object]:
    """The JSON record of an event (the event log, artifacts' ``user_events.jsonl``)."""
    d: dict[str, object] = {
        "user_id": e.user_id,
        "item_id": e.item_id,
        "type": e.type,
        "timestamp": e.timestamp,
    }
    if e.query is not None:
        d["query"] = e.query
    if e.event_id is not None:
        d["id"] = e.event_id
    return d


def event_from_json(d: Mapping[str, Any]) -> Event:
    """The event a record of :func:`event_to_json` stands for."""
    return Event(
        user_id=str(d["user_id"]),
        item_id=str(d["item_id"]),
        type=d["type"],
        timestamp=float(d["timestamp"]),
        query=d.get("query"),
        event_id=None if d.get("id") is None else str(d["id"]),
    )


def _number(x: float) -> str:
    """Shortest text that reads back as the same float; integral values without ``.0``."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))
