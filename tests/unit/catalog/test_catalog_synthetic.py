import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

from shoprec.catalog.loaders import load_events, load_judgments, load_products
from shoprec.catalog.synthetic import Storefront, generate_storefront, write_storefront
from shoprec.errors import ConfigError, DataError
from shoprec.types import EVENT_TYPES

SMALL = {"n_products": 800, "n_users": 60, "n_sessions": 600}


@pytest.fixture(scope="module")
def small() -> Storefront:
    return generate_storefront(**SMALL, seed=7)


@pytest.fixture(scope="module")
def default() -> Storefront:
    return generate_storefront()


def title_words(sf: Storefront) -> set[str]:
    words: set[str] = set()
    for p in sf.products:
        words.update(re.findall(r"[a-z0-9]+", p.title.lower()))
    return words


# ---------------------------------------------------------------------------- determinism


def test_same_seed_same_storefront(small: Storefront) -> None:
    assert generate_storefront(**SMALL, seed=7) == small


def test_different_seed_differs(small: Storefront) -> None:
    other = generate_storefront(**SMALL, seed=8)
    assert other.seed == 8
    assert [p.title for p in other.products] != [p.title for p in small.products]
    assert other.events != small.events


def test_written_files_are_byte_identical(small: Storefront, tmp_path: Path) -> None:
    a = write_storefront(small, tmp_path / "a")
    b = write_storefront(generate_storefront(**SMALL, seed=7), tmp_path / "b")
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key


# ---------------------------------------------------------------------------- shape


def test_sizes_and_ids(small: Storefront) -> None:
    assert len(small.products) == SMALL["n_products"]
    assert len(small.users) == SMALL["n_users"]
    assert [p.id for p in small.products[:2]] == ["P000001", "P000002"]
    assert len({p.id for p in small.products}) == len(small.products)
    assert [u.id for u in small.users[:2]] == ["U00001", "U00002"]
    assert small.events and small.judgments and small.test_judgments


def test_products_are_well_formed(small: Storefront) -> None:
    for p in small.products:
        assert p.title and p.description and p.brand
        assert len(p.category_path) >= 2
        assert p.price is not None and p.price > 0
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in p.attributes.items())
        assert p.brand in p.title
    in_stock = sum(p.in_stock for p in small.products) / len(small.products)
    assert 0.85 < in_stock < 0.97


def test_users_have_tastes(small: Storefront) -> None:
    categories = {p.category for p in small.products}
    for u in small.users:
        assert 1 <= len(u.category_affinity) <= 9
        assert 2 <= len(u.brand_affinity) <= 4
        assert set(u.category_affinity) <= categories
        assert all(brand and weight > 0 for brand, weight in u.brand_affinity.items())
        assert sum(u.category_affinity.values()) == pytest.approx(1.0, abs=0.01)
        assert sum(u.brand_affinity.values()) == pytest.approx(1.0, abs=0.01)
        assert 0.0 <= u.price_sensitivity <= 1.0


def test_events_refer_to_products_and_users(small: Storefront) -> None:
    product_ids = {p.id for p in small.products}
    user_ids = {u.id for u in small.users}
    assert all(e.item_id in product_ids for e in small.events)
    assert all(e.user_id in user_ids for e in small.events)
    assert {e.type for e in small.events} == set(EVENT_TYPES)
    stamps = [e.timestamp for e in small.events]
    assert stamps[0] > 1_700_000_000
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
    with_query = sum(e.query is not None for e in small.events)
    assert 0 < with_query < len(small.events)  # searches and some browsing


def test_purchases_follow_carts(small: Storefront) -> None:
    carted: set[tuple[str, str]] = set()
    for e in small.events:
        if e.type == "cart":
            carted.add((e.user_id, e.item_id))
        elif e.type == "purchase":
            assert (e.user_id, e.item_id) in carted


def test_judgments_are_consistent(small: Storefront) -> None:
    products = {p.id: p for p in small.products}
    train_queries = {j.query for j in small.judgments}
    test_queries = {j.query for j in small.test_judgments}
    assert not train_queries & test_queries
    assert len(train_queries | test_queries) == round(0.15 * SMALL["n_sessions"])
    assert len(train_queries) == round(0.7 * len(train_queries | test_queries))
    session_queries = {e.query for e in small.events if e.query}
    assert train_queries | test_queries <= session_queries

    by_query: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for j in small.judgments + small.test_judgments:
        assert j.product_id in products
        assert j.relevance in (1.0, 2.0, 3.0)
        by_query[j.query].append((j.product_id, j.relevance))
    for query, graded in by_query.items():
        assert len({pid for pid, _ in graded}) == len(graded), query
        assert any(g == 3.0 for _, g in graded), query
        assert sum(g == 1.0 for _, g in graded) <= 20
        assert len({products[pid].category for pid, _ in graded}) == 1  # one leaf category


def test_queries_carry_noise(default: Storefront) -> None:
    words = title_words(default)
    queries = sorted({j.query for j in default.judgments + default.test_judgments})
    unseen = [q for q in queries if any(w not in words for w in q.split())]
    # typos, truncated words and synonyms that no title uses
    assert 0.05 * len(queries) < len(unseen) < 0.6 * len(queries)
    titles = [p.title.lower() for p in default.products]
    assert any(all(q not in t for t in titles) for q in unseen)


def test_write_storefront_loads_back(small: Storefront, tmp_path: Path) -> None:
    out = tmp_path / "store"
    files = write_storefront(small, out)
    assert {p.name for p in files.values()} == {
        "products.jsonl",
        "events.csv",
        "judgments_train.csv",
        "judgments_test.csv",
        "users.jsonl",
        "README.txt",
    }
    assert all(p.parent == out and p.is_file() for p in files.values())
    assert load_products(files["products"])[0] == small.products
    assert load_events(files["events"])[0] == small.events
    assert load_judgments(files["judgments_train"])[0] == small.judgments
    assert load_judgments(files["judgments_test"])[0] == small.test_judgments
    assert "seed 7" in files["readme"].read_text(encoding="utf-8")


def test_write_storefront_replaces_previous(small: Storefront, tmp_path: Path) -> None:
    out = tmp_path / "store"
    out.mkdir()
    (out / "stale.txt").write_text("old", encoding="utf-8")
    write_storefront(small, out)
    assert not (out / "stale.txt").exists()
    assert os.listdir(tmp_path) == ["store"]  # no temp folders left behind
    with pytest.raises(DataError, match="not a directory"):
        write_storefront(small, out / "README.txt")


def test_bad_sizes_raise() -> None:
    with pytest.raises(ConfigError):
        generate_storefront(n_products=0)
    with pytest.raises(ConfigError):
        generate_storefront(n_users=0)


def test_tiny_catalog_and_no_sessions() -> None:
    sf = generate_storefront(n_products=5, n_users=3, n_sessions=0, seed=1)
    assert len(sf.products) == 5
    assert sf.events == [] and sf.judgments == [] and sf.test_judgments == []
    sf = generate_storefront(n_products=20, n_users=3, n_sessions=40, seed=2, progress=True)
    assert {e.item_id for e in sf.events} <= {p.id for p in sf.products}


# ---------------------------------------------------------------------------- the default size


def test_default_storefront(default: Storefront) -> None:
    assert len(default.products) == 20_000
    assert len(default.users) == 2_000
    assert len(default.events) > 50_000
    departments = {p.category_path[0] for p in default.products}
    assert len(departments) >= 8
    assert len({p.category for p in default.products}) >= 60
    queries = {j.query for j in default.judgments} | {j.query for j in default.test_judgments}
    assert len(queries) == 3_000
    assert len({j.query for j in default.judgments}) == 2_100
    zh = [p.attributes["title_zh"] for p in default.products if "title_zh" in p.attributes]
    assert 0.005 * 20_000 < len(zh) < 0.02 * 20_000
    assert all(re.search(r"[\u4e00-\u9fff]", t) for t in zh)
    words = title_words(default)
    assert {"sofa", "couch", "faucet", "drill"} <= words
