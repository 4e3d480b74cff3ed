import math

import numpy as np

from shoprec.models.users import UserProfiles
from shoprec.types import Event


def _profiles() -> UserProfiles:
    emb = np.eye(4, dtype=np.float32)
    return UserProfiles(
        {"a": 0, "b": 1, "c": 2, "d": 3},
        ["voltmark", "voltmark", "ironridge", ""],
        np.asarray(["tools > drills", "tools > drills", "tools > hammers", ""], dtype=np.str_),
        np.asarray([100.0, 50.0, 20.0, np.nan], dtype=np.float32),
        emb,
    )


def test_profile_weights_and_features() -> None:
    users = _profiles()
    assert (
        users.add([Event("u", "a", "purchase", 1.0), Event("u", "c", "click", 2.0), Event("u", "zz", "view", 3.0)]) == 2
    )
    p = users.get("u")
    assert p is not None and p.weight == 4.0
    assert p.brands == {"voltmark": 0.75, "ironridge": 0.25}
    assert p.departments == {"tools": 1.0} and p.purchased == frozenset({0})
    f = users.features(p, np.asarray([0, 1, 2, 3]))
    assert f.shape == (4, 6)
    assert f[:, 0].tolist() == [0.75, 0.75, 0.25, 0.0]
    assert f[1, 1] == 0.75 and f[3, 1] == 0.0
    assert f[0, 3] > f[1, 3]  # content similarity follows what was touched
    assert f[0, 5] == 1.0 and f[1, 5] == 0.0
    assert math.isnan(f[3, 4])  # unknown price


def test_unknown_user_gives_missing_features() -> None:
    users = _profiles()
    assert users.get("nobody") is None and users.get(None) is None
    assert np.isnan(users.features(None, np.asarray([0, 1]))).all()
