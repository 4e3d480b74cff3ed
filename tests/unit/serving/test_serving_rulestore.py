"""The rule set's versions on disk: publish, list, rollback, and a second process (store)
seeing a new version at its next check."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shoprec.errors import ArtifactError, NotFoundError
from shoprec.serving.rulestore import RuleIn, RuleSetIn, RuleStore


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def hide(rid: str, product: str) -> RuleIn:
    return RuleIn.model_validate(
        {
            "id": rid,
            "scope": {"type": "query_exact", "value": "drill"},
            "action": {"type": "hide", "product_id": product},
        }
    )


def test_publish_list_get_and_rollback(tmp_path: Path) -> None:
    clock = FakeClock()
    store = RuleStore(tmp_path / "rules", wall_clock=clock, monotonic=clock)
    assert store.current().version is None and store.versions() == []
    v1 = store.publish([hide("a", "P1")], author="key:k1", note="first")
    clock.t += 1
    v2 = store.publish([hide("b", "P2")], author="key:k2")
    assert (v1.version, v2.version) == (1, 2)
    assert store.current().number == 2
    assert [r.id for r in store.current().index.rules] == ["b"]
    v3 = store.rollback(1, author="key:k3")
    assert v3.version == 3 and v3.rollback_of == 1 and v3.digest == v1.digest and v3.note == "rollback to version 1"
    assert [v.version for v in store.versions()] == [3, 2, 1]
    assert store.get(2).author == "key:k2" and store.get(2).created_at == 1001.0
    assert [r.id for r in store.current().index.rules] == ["a"]
    with pytest.raises(NotFoundError):
        store.get(9)


def test_another_store_on_the_folder_sees_a_new_version_at_its_next_check(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = RuleStore(tmp_path / "rules", monotonic=clock, check_every_s=1.0)
    reader = RuleStore(tmp_path / "rules", monotonic=clock, check_every_s=1.0)
    assert reader.current().number is None
    writer.publish([hide("a", "P1")], author="x")
    assert reader.current().number is None  # not due yet: no file system call
    clock.t += 1.0
    assert reader.current().number == 1


def test_two_writers_never_overwrite_a_version(tmp_path: Path) -> None:
    a, b = RuleStore(tmp_path / "rules"), RuleStore(tmp_path / "rules")
    assert a.publish([hide("a", "P1")], author="a").version == 1
    assert b.publish([hide("b", "P2")], author="b").version == 2
    assert a.get(1).author == "a"


def test_a_malformed_version_file_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "v000001.json").write_text('{"version": 1}')
    with pytest.raises(ArtifactError, match="v000001.json"):
        RuleStore(folder).current()


def test_rule_set_shape_is_validated() -> None:
    good = {"id": "x", "scope": {"type": "query_contains", "value": "drill"}}
    with pytest.raises(ValidationError):  # unknown action
        RuleIn.model_validate({**good, "action": {"type": "explode", "product_id": "P1"}})
    with pytest.raises(ValidationError):  # a match with no condition (the core's check)
        RuleIn.model_validate({**good, "action": {"type": "boost", "match": {}}})
    with pytest.raises(ValidationError, match="used twice"):
        RuleSetIn.model_validate({"rules": [{**good, "action": {"type": "hide", "product_id": "P1"}}] * 2})
