from __future__ import annotations

from shoprec.core.querygen import generate_queries, training_texts


def test_generated_queries_are_short_lowercase_pieces_of_titles() -> None:
    titles = ["Voltmark 20V Cordless Drill Driver Kit. Voltmark", "Oakhaus Coffee Table Walnut"]
    qs = generate_queries(titles, seed=1, per_text=3)
    assert qs and len(qs) == len(set(qs))
    for q in qs:
        assert q == q.lower() and 1 <= len(q.split()) <= 4
        assert any(q in t.lower().replace(". ", " ") for t in titles)
    mixed = training_texts(titles * 3, seed=0, max_texts=6)
    assert len(mixed) <= 6 and any(t in titles for t in mixed)
    assert training_texts(titles, seed=0) == training_texts(titles, seed=0)
