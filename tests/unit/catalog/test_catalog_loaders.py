import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shoprec.catalog.loaders import (
    MAX_PROBLEMS,
    event_from_json,
    load_events,
    load_judgments,
    load_products,
    parse_column_map,
    read_clicks,
    read_sequences,
    write_events_csv,
    write_events_jsonl,
    write_judgments_csv,
    write_products_jsonl,
)
from shoprec.errors import DataError, RowError
from shoprec.types import Event, Judgment, Product

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"

PRODUCTS = [
    Product(
        id="P1",
        title="Voltmark 20V Cordless Drill, Black",
        description="A drill.",
        category="Tools > Power Tools > Drills",
        brand="Voltmark",
        price=119.99,
        in_stock=True,
        attributes={"color": "Black", "voltage": "20V"},
    ),
    Product(id="P2", title="Claw Hammer", price=None, in_stock=False, attributes={}),
    Product(id="P3", title="无线电钻 cordless", category="Tools", price=0.0),
]


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


# ---------------------------------------------------------------------------- round trips


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = write_products_jsonl(PRODUCTS, tmp_path / "p.jsonl")
    products, report = load_products(path)
    assert products == PRODUCTS
    assert (report.rows, report.kept, report.duplicates, report.skipped) == (3, 3, 0, 0)
    assert report.problems == ()
    assert report.path == str(path)


def test_csv_round_trip_with_all_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.csv",
        "id,title,description,category,brand,price,in_stock,attributes,ignored\n"
        'P1,"Voltmark 20V Cordless Drill, Black",A drill.,Tools > Power Tools > Drills,'
        'Voltmark,119.99,yes,"{""color"": ""Black"", ""voltage"": ""20V""}",x\n'
        "P2,Claw Hammer,,,,,no,,y\n"
        "P3,无线电钻 cordless,,Tools,,0,1,,z\n",
    )
    products, report = load_products(path)
    assert products == PRODUCTS
    assert report.kept == 3


def test_csv_attributes_key_value_form(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "id,title,attributes\nP1,Drill,color=Black; voltage = 20V ;\n")
    products, _ = load_products(path)
    assert products[0].attributes == {"color": "Black", "voltage": "20V"}


def test_tsv_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "p.tsv", "sku\tname\tprice\nA1\tHammer, claw\t9.5\nA2\tSaw\t\n")
    products, _ = load_products(path)
    assert [(p.id, p.title, p.price) for p in products] == [
        ("A1", "Hammer, claw", 9.5),
        ("A2", "Saw", None),
    ]


def test_parquet_round_trip(tmp_path: Path) -> None:
    table = pa.table(
        {
            "product_id": [1, 2],
            "title": ["Drill", "Saw"],
            "price": [10.0, None],
            "in_stock": [True, False],
            "attributes": ['{"color": "Red"}', None],
        }
    )
    pq.write_table(table, tmp_path / "p.parquet")
    products, report = load_products(tmp_path / "p.parquet")
    assert products == [
        Product(id="1", title="Drill", price=10.0, in_stock=True, attributes={"color": "Red"}),
        Product(id="2", title="Saw", price=None, in_stock=False),
    ]
    assert report.kept == 2


def test_parquet_map_attributes(tmp_path: Path) -> None:
    attrs = pa.array([[("color", "Red")], []], type=pa.map_(pa.string(), pa.string()))
    pq.write_table(
        pa.table({"id": ["a", "b"], "title": ["x", "y"], "attributes": attrs}),
        tmp_path / "m.parquet",
    )
    products, _ = load_products(tmp_path / "m.parquet")
    assert [p.attributes for p in products] == [{"color": "Red"}, {}]


def test_events_round_trip(tmp_path: Path) -> None:
    events = [
        Event("u1", "P1", "view", 1_700_000_000.0, "cordless drill"),
        Event("u1", "P1", "purchase", 1_700_000_010.5, None),
    ]
    path = write_events_csv(events, tmp_path / "e.csv")
    loaded, report = load_events(path)
    assert loaded == events
    assert report.kept == 2


def test_judgments_round_trip(tmp_path: Path) -> None:
    judgments = [
        Judgment("drill", "P1", 3.0),
        Judgment("drill", "P2", 2.5),
        Judgment("saw, big", "P1", 0.0),
    ]
    path = write_judgments_csv(judgments, tmp_path / "j.csv")
    assert load_judgments(path)[0] == judgments


def test_writers_are_atomic_and_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "p.jsonl"
    write_products_jsonl(PRODUCTS, target)
    write_products_jsonl(PRODUCTS[:1], target)
    assert load_products(target)[0] == PRODUCTS[:1]
    assert os.listdir(target.parent) == ["p.jsonl"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = write_products_jsonl(PRODUCTS, tmp_path / "p.jsonl")

    def broken() -> list[Product]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_products_jsonl((p for p in broken()), target)
    assert load_products(target)[0] == PRODUCTS
    assert os.listdir(tmp_path) == ["p.jsonl"]


# ---------------------------------------------------------------------------- columns


def test_column_map(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "code,label,title\nA,Real title,Not this\n")
    products, _ = load_products(path, columns={"id": "code", "title": "label"})
    assert products == [Product(id="A", title="Real title")]


def test_column_map_unknown_field_and_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "id,title\nA,B\n")
    with pytest.raises(DataError, match="unknown products field"):
        load_products(path, columns={"colour": "id"})
    with pytest.raises(DataError, match="'nope'.*columns present: id, title"):
        load_products(path, columns={"title": "nope"})


def test_missing_required_column(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "product_id,label\n1,x\n")
    with pytest.raises(DataError) as info:
        load_products(path)
    message = str(info.value)
    assert "items.csv" in message
    assert "'title'" in message
    assert "product_id, label" in message
    assert not isinstance(info.value, RowError)


def test_event_aliases_and_default_type(tmp_path: Path) -> None:
    path = write(tmp_path / "clicks.tsv", "SessionId\tItemId\tTime\n3\t214716935\t1396437466.94\n")
    events, _ = load_events(path)
    assert events == [Event("3", "214716935", "click", 1396437466.94, None)]


def test_event_iso_timestamps_and_types(tmp_path: Path) -> None:
    path = write(
        tmp_path / "e.jsonl",
        '{"user": "u", "product_id": "p", "ts": "2024-01-01T00:00:00Z", "event": "Cart"}\n'
        '{"user": "u", "product_id": "p", "ts": "2024-01-01 00:00:10", "event": "view"}\n'
        '{"user": "u", "product_id": "p", "ts": 1704067220, "event": "purchase", "query": "x"}\n',
    )
    events, _ = load_events(path)
    assert [e.timestamp for e in events] == [1704067200.0, 1704067210.0, 1704067220.0]
    assert [e.type for e in events] == ["cart", "view", "purchase"]
    assert [e.query for e in events] == [None, None, "x"]


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xef\xbb\xbfid,title\r\nA,Drill\r\nB,Saw\r\n")
    products, _ = load_products(path)
    assert [p.id for p in products] == ["A", "B"]


def test_parse_column_map() -> None:
    assert parse_column_map(["id=product_id", " title = name "]) == {
        "id": "product_id",
        "title": "name",
    }
    assert parse_column_map([]) == {}
    for bad in (["id"], ["=x"], ["id="], ["id=a", "id=b"]):
        with pytest.raises(DataError, match="bad column spec"):
            parse_column_map(bad)


# ---------------------------------------------------------------------------- files


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path / "products.xlsx", "x")
    with pytest.raises(DataError, match=r"products\.xlsx.*unknown file type"):
        load_products(path)
    with pytest.raises(DataError, match=r"nothere\.csv: no such file"):
        load_products(tmp_path / "nothere.csv")


def test_empty_csv(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty file"):
        load_products(write(tmp_path / "p.csv", ""))
    assert load_products(write(tmp_path / "h.csv", "id,title\n"))[0] == []
    assert load_products(write(tmp_path / "e.jsonl", "\n\n"))[0] == []


def test_unreadable_parquet(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_products(write(tmp_path / "p.parquet", "not parquet"))


# ---------------------------------------------------------------------------- bad rows

HEADER = "id,title,price,in_stock,attributes\n"
GOOD = "A,Drill,1,true,\n"

BAD_PRODUCT_ROWS = [
    (",Hammer,1,true,\n", "empty id"),
    ("B,  ,1,true,\n", "empty title"),
    ("B,Hammer,cheap,true,\n", "non-numeric price 'cheap'"),
    ("B,Hammer,-2,true,\n", "negative price '-2'"),
    ("B,Hammer,nan,true,\n", "price must be finite"),
    ("B,Hammer,1,maybe,\n", "bad in_stock 'maybe'"),
    ('B,Hammer,1,true,"{""a"": }"\n', "bad attributes JSON"),
    ('B,Hammer,1,true,"[1, 2]"\n', "bad attributes"),
    ("B,Hammer,1,true,novalue\n", "bad attributes"),
    ("B,Hammer,1\n", "expected 5 fields, found 3"),
    ("B,Hammer,1,true,,extra\n", "expected 5 fields, found 6"),
]


@pytest.mark.parametrize(("row", "problem"), BAD_PRODUCT_ROWS)
def test_bad_product_row_names_file_and_line(tmp_path: Path, row: str, problem: str) -> None:
    path = write(tmp_path / "cat.csv", HEADER + GOOD + row + GOOD.replace("A", "C"))
    with pytest.raises(RowError) as info:
        load_products(path)
    err = info.value
    assert err.line == 3
    assert err.path == str(path)
    assert problem in err.problem
    assert f"cat.csv:3: {err.problem}" in str(err)


def test_invalid_utf8_row(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"id,title\nA,ok\nB,bad \xff byte\nC,ok\n")
    with pytest.raises(RowError) as info:
        load_products(path)
    assert info.value.line == 3
    assert "invalid UTF-8" in info.value.problem
    products, report = load_products(path, skip_bad_rows=True)
    assert [p.id for p in products] == ["A", "C"]
    assert report.skipped == 1


def test_line_numbers_count_multiline_fields_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", 'id,title,description\nA,Drill,"two\nlines"\n\nB,,x\n')
    with pytest.raises(RowError) as info:
        load_products(path)
    assert info.value.line == 5


def test_unterminated_quote(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", 'id,title\nA,Drill\nB,"open\n')
    with pytest.raises(RowError) as info:
        load_products(path)
    assert info.value.line == 3


def test_bad_event_rows(tmp_path: Path) -> None:
    header = "user_id,item_id,timestamp,type\n"
    good = "u,p,1700000000,view\n"
    cases = [
        ("u,p,1700000000,like\n", "invalid event type 'like'"),
        ("u,p,yesterday,view\n", "unparsable timestamp 'yesterday'"),
        ("u,p,,view\n", "unparsable timestamp"),
        (",p,1,view\n", "empty user_id"),
        ("u,,1,view\n", "empty item_id"),
        ("u,p,1,\n", "invalid event type ''"),
    ]
    for row, problem in cases:
        path = write(tmp_path / "events.csv", header + good + good + row)
        with pytest.raises(RowError) as info:
            load_events(path)
        assert (info.value.line, info.value.path) == (4, str(path))
        assert problem in info.value.problem


def test_bad_judgment_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "j.csv", "query,product_id,relevance\ndrill,P1,3\ndrill,P2,high\n")
    with pytest.raises(RowError, match=r"j\.csv:3: non-numeric relevance 'high'"):
        load_judgments(path)
    path = write(tmp_path / "j.csv", "query,product_id,relevance\n,P1,3\n")
    with pytest.raises(RowError, match=r"j\.csv:2: empty query"):
        load_judgments(path)


def test_bad_jsonl_rows_count_physical_lines(tmp_path: Path) -> None:
    good = json.dumps({"id": "A", "title": "Drill"})
    cases = [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "expected a JSON object, found list"),
        ('{"id": "B", "title": "T", "price": true}', "non-numeric price True"),
        ('{"id": "B", "title": "T", "attributes": {"a": [1]}}', "attribute 'a' must be a scalar"),
        ('{"id": "B", "title": {"x": 1}}', "title must be text"),
        ('{"id": "B"}', "empty title"),
    ]
    for row, problem in cases:
        path = write(tmp_path / "p.jsonl", f"{good}\n\n   \n{row}\n")
        with pytest.raises(RowError) as info:
            load_products(path)
        assert info.value.line == 4
        assert problem in info.value.problem


def test_jsonl_attributes_are_stringified(tmp_path: Path) -> None:
    row = {"id": 7, "title": "T", "attributes": {"n": 3, "ok": True, "f": 1.5, "none": None}}
    path = write(tmp_path / "p.ndjson", json.dumps(row) + "\n")
    products, _ = load_products(path)
    assert products[0].id == "7"
    assert products[0].attributes == {"n": "3", "ok": "true", "f": "1.5"}


def test_parquet_bad_row_says_row(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"id": ["a", "b"], "title": ["x", "y"], "price": [1.0, -3.0]}),
        tmp_path / "p.parquet",
    )
    with pytest.raises(RowError) as info:
        load_products(tmp_path / "p.parquet")
    assert info.value.line == 2
    assert "row 2: negative price" in str(info.value)
    assert "p.parquet:2:" in str(info.value)


# ---------------------------------------------------------------------------- skip mode, duplicates


def test_skip_bad_rows_counts_and_reports(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.csv",
        HEADER + GOOD + "B,Hammer,-1,true,\nC,Saw,1,true,\nD,,1,true,\nE,Level\n",
    )
    products, report = load_products(path, skip_bad_rows=True)
    assert [p.id for p in products] == ["A", "C"]
    assert (report.rows, report.kept, report.skipped, report.duplicates) == (5, 2, 3, 0)
    assert report.problems == (
        f"{path}:3: negative price '-1'",
        f"{path}:5: empty title",
        f"{path}:6: expected 5 fields, found 2",
    )


def test_duplicate_product_ids_keep_first(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "id,title\nA,First\nB,Other\nA,Second\nA,Third\n")
    products, report = load_products(path)
    assert [(p.id, p.title) for p in products] == [("A", "First"), ("B", "Other")]
    assert (report.rows, report.kept, report.duplicates, report.skipped) == (4, 2, 2, 0)
    assert report.problems[0] == f"{path}:4: duplicate id A (first seen on line 2)"


def test_duplicate_judgments_keep_first_events_never_deduplicated(tmp_path: Path) -> None:
    path = write(tmp_path / "j.csv", "query,product_id,relevance\nq,P1,3\nq,P1,1\nq,P2,1\n")
    judgments, report = load_judgments(path)
    assert judgments == [Judgment("q", "P1", 3.0), Judgment("q", "P2", 1.0)]
    assert report.duplicates == 1
    assert "first seen on line 2" in report.problems[0]
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp\nu,p,1\nu,p,1\n")
    events, report = load_events(path)
    assert len(events) == 2
    assert report.duplicates == 0


def test_problem_list_is_capped_but_counts_are_exact(tmp_path: Path) -> None:
    rows = "".join(f"{i},\n" for i in range(MAX_PROBLEMS + 5))
    path = write(tmp_path / "p.csv", "id,title\n" + rows)
    products, report = load_products(path, skip_bad_rows=True)
    assert products == []
    assert report.skipped == MAX_PROBLEMS + 5
    assert len(report.problems) == MAX_PROBLEMS + 1
    assert report.problems[-1].endswith("5 more problems not listed")


# ---------------------------------------------------------------------------- the real data


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def test_homedepot_products_load_without_a_column_map() -> None:
    products, report = load_products(shared("homedepot/products.csv"))
    assert report.kept == len(products) == 54_667
    assert report.skipped == report.duplicates == 0
    assert products[0].id == "100001"


def test_homedepot_judgments_load() -> None:
    judgments, report = load_judgments(shared("homedepot/judgments_dev.csv"))
    assert report.kept == len(judgments) == 37_168
    assert all(1.0 <= j.relevance <= 3.0 for j in judgments)


def test_yoochoose_clicks_load() -> None:
    events, report = load_events(shared("yoochoose/clicks_train.tsv"))
    assert report.kept == len(events) == 70_278
    assert {e.type for e in events} == {"click"}


def test_events_jsonl_round_trips_and_stays_private(tmp_path: Path) -> None:
    events = [Event("u1", "P1", "click", 1.5, query="drill"), Event("u1", "P2", "purchase", 2.0)]
    path = write_events_jsonl(events, tmp_path / "sub" / "user_events.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[1] == '{"user_id":"u1","item_id":"P2","type":"purchase","timestamp":2.0}'
    assert [event_from_json(json.loads(line)) for line in lines] == events
    assert path.stat().st_mode & 0o077 == 0  # user histories: owner only


def test_sequence_and_click_files_are_read_with_a_report(tmp_path: Path) -> None:
    (tmp_path / "sequences.txt").write_text("u1 1 2 3 4\nu2 2 3\n")
    seqs, report = read_sequences(tmp_path / "sequences.txt")
    assert seqs == {"u1": ["1", "2", "3", "4"]}
    assert (report.rows, report.kept, report.skipped) == (2, 1, 1) and report.path.endswith("sequences.txt")
    (tmp_path / "clicks.tsv").write_text("SessionId\tItemId\tTime\ns1\tB\t2\ns1\tA\t1\n")
    sessions, report = read_clicks(tmp_path / "clicks.tsv")
    assert sessions == {"s1": ["A", "B"]} and report.rows == 2


def test_a_missing_sequence_or_click_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read sequences"):
        read_sequences(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="cannot read clicks"):
        read_clicks(tmp_path / "nope.tsv")
