"""Recommendations over the shared near-line state, in process (a reader that answers from a
dict): the service ranks as the evaluation's reference ranking does, and the artifacts' models
and the near-line counts add up."""

from __future__ import annotations

import random

import numpy as np

from shoprec.core.nearline import DEFAULT_RULE, NearlineView, rank, transition_scores
from shoprec.models.bundle import CatalogArrays
from shoprec.models.recommender import CoOccurrenceModel, PopularityModel
from shoprec.serving.recommend import RecommendService
from shoprec.types import Event, Filters, Product

ITEMS = [f"p{i}" for i in range(40)]


class DictReader:
    """The near-line state as plain values."""

    def __init__(self, histories: dict[str, list[str]], rows: dict[str, dict[str, float]], popular: dict[str, float]):
        self.histories, self.rows, self.popular = histories, rows, popular

    def view(self, user_id: str | None, *, popular: bool = True) -> NearlineView:
        history = tuple(self.histories.get(user_id or "", ()))
        rows = tuple(self.rows.get(i, {}) for i in reversed(history[-DEFAULT_RULE.history_items :]))
        top = tuple(sorted(self.popular.items(), key=lambda kv: -kv[1])) if popular else ()
        return NearlineView(history, rows, top)


def catalog() -> CatalogArrays:
    return CatalogArrays.from_products(
        [Product(i, f"thing {i}", category="A" if n % 2 else "B") for n, i in enumerate(ITEMS)]
    )


def seeded_state(seed: int = 3) -> DictReader:
    rng = random.Random(seed)
    sequences = {f"u{u}": [rng.choice(ITEMS) for _ in range(rng.randrange(2, 12))] for u in range(30)}
    model = CoOccurrenceModel.fit(sequences.values())
    rows = {a: {b: model.weight(a, b) for b in ITEMS if model.weight(a, b) > 0} for a in ITEMS}
    popular = {i: float(sum(s.count(i) for s in sequences.values())) for i in ITEMS}
    return DictReader(sequences, rows, popular)


def test_the_service_ranks_the_near_line_state_as_the_reference_does() -> None:
    state = seeded_state()
    empty = PopularityModel([], np.zeros(1))
    service = RecommendService(catalog(), popularity=empty, cooccurrence=None, sequential=None, nearline=state)
    for user in state.histories:
        got = service.recommend(user, 10, exclude_seen=False)
        view = state.view(user)
        assert got.strategy == "cooccurrence" and got.history_length == len(view.history)
        scored = transition_scores(view, DEFAULT_RULE)
        want = rank(view, DEFAULT_RULE, 10)
        # equal up to the order of exact ties in transition score
        assert [round(scored.get(i, 0), 6) for i, _ in got.items] == [round(scored.get(i, 0), 6) for i in want]
    unknown = service.recommend("stranger", 5)
    assert unknown.strategy == "popularity" and [i for i, _ in unknown.items] == rank(state.view(None), DEFAULT_RULE, 5)


def test_seen_items_filters_and_the_artifacts_history_apply() -> None:
    state = seeded_state()
    cat = catalog()
    base = CoOccurrenceModel.fit([["p1", "p2", "p3"]])
    service = RecommendService(
        cat,
        popularity=PopularityModel(["p1"], np.asarray([0.0, 5.0])),
        cooccurrence=base,
        sequential=None,
        nearline=state,
    )
    service.add([Event("u0", "p1", "click", 1.0)], update_models=False)  # what the artifacts' events told
    got = service.recommend("u0", 10, filters=Filters(category="A"))
    assert got.history_length == 1 + len(state.histories["u0"])
    seen = {"p1", *state.histories["u0"]}
    assert not {i for i, _ in got.items} & seen
    assert all(cat.products[cat.index_of[i]].category == "A" for i, _ in got.items)
    # the artifacts' co-occurrence and the near-line rows add up: p1 -> p2 is in both
    alone = RecommendService(cat, popularity=PopularityModel([], np.zeros(1)), cooccurrence=None, sequential=None,
                             nearline=DictReader({"v": ["p1"]}, state.rows, state.popular))  # fmt: skip
    both = RecommendService(cat, popularity=PopularityModel([], np.zeros(1)), cooccurrence=base, sequential=None,
                            nearline=DictReader({"v": ["p1"]}, state.rows, state.popular))  # fmt: skip
    score = {i: s for i, s in both.recommend("v", 40, exclude_seen=False).items}
    near = {i: s for i, s in alone.recommend("v", 40, exclude_seen=False).items}
    assert abs(score["p2"] - near.get("p2", 0.0) - base.weight("p1", "p2")) < 1e-3 and base.weight("p1", "p2") == 1.0
