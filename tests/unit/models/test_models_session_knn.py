from __future__ import annotations

import numpy as np
import pytest

from shoprec.models.session_knn import SessionKNN


def test_neighbours_vote_for_what_followed_similar_sessions() -> None:
    # Sessions that contain 1 and 2 went on to 3; sessions with 4 went on to 5.
    train = [[1, 2, 3], [2, 1, 3], [4, 5], [4, 5, 6], [1, 3]]
    model = SessionKNN(train, n_items=6, neighbors=2)
    scores = model.score_ids([[1, 2], [4]])
    assert scores.shape == (2, 7) and np.isneginf(scores[:, 0]).all()
    assert int(np.argmax(scores[0, 1:])) + 1 in {1, 2, 3} and scores[0, 3] > scores[0, 5]
    assert scores[1, 5] > scores[1, 3] and scores[1, 3] == 0.0


def test_only_the_nearest_sessions_vote() -> None:
    train = [[1, 2], [1, 3], [1, 4], [9, 1, 5]]
    scores = SessionKNN(train, n_items=9, neighbors=1).score_ids([[1]])
    # [1, 2] is the most similar (smallest set, earliest on ties); 5 comes from a longer session.
    assert scores[0, 2] > 0 and scores[0, 5] == 0.0


def test_recent_clicks_weigh_more() -> None:
    train = [[1, 7], [2, 8]]
    scores = SessionKNN(train, n_items=8, neighbors=2, decay=0.5).score_ids([[1, 2]])
    assert scores[0, 8] > scores[0, 7]  # 2 is the latest click, so its session counts more


@pytest.mark.parametrize(("neighbors", "decay"), [(0, 0.1), (5, 1.0), (5, -0.1)])
def test_bad_options(neighbors: int, decay: float) -> None:
    with pytest.raises(ValueError):
        SessionKNN([[1, 2]], n_items=2, neighbors=neighbors, decay=decay)
