"""The merchandising rule sets, versioned, in a folder: their JSON shape and the store.

The JSON shape of a rule (:class:`RuleIn`) is declared once, here: ``PUT /v1/admin/rules``
validates with it (a bad rule is a 422 naming the field), the OpenAPI spec documents it and
the store reads its files with it::

    {"id": "drill-pin", "scope": {"type": "query_exact", "value": "cordless drill"},
     "action": {"type": "pin", "product_id": "205594", "position": 1}}
    {"id": "voltmark", "scope": {"type": "query_contains", "value": "drill"},
     "action": {"type": "boost", "weight": 2, "match": {"brand": "Voltmark", "in_stock": true}}}

Each change is a new version, a file ``v000001.json`` (then ``v000002.json``, ...) written
once and never changed: the version, when, by whom, a note, the version a rollback restored,
and the whole rule set. The current set is the highest version; a rollback writes the old
set again as a new version, so history only grows. A version's file is created exclusively
(a hard link of a fully written temporary file), so two writers racing for one number cannot
overwrite each other: the loser takes the next number.

Every process serving from the same folder sees a new version: :meth:`RuleStore.current`
lists the folder at most every ``check_every_s`` and reads a version only when a higher one
appeared (a listing, not the folder's mtime: its coarse clock can miss two quick writes).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shoprec.atomicio import create_bytes
from shoprec.core.merchandising import (
    MAX_PIN_POSITION,
    MAX_RULES,
    MAX_WEIGHT,
    Boost,
    Bury,
    Hide,
    Match,
    Pin,
    Rule,
    RuleIndex,
    Scope,
    ScopeKind,
    check_rules,
)
from shoprec.errors import ArtifactError, NotFoundError

_FILE = re.compile(r"v(\d{6,})\.json")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScopeIn(_Strict):
    type: ScopeKind = Field(description="query_exact, query_contains (whole words, in order) or category (and below)")
    value: str = Field(min_length=1, max_length=200)


class MatchIn(_Strict):
    brand: str | None = Field(default=None, min_length=1, max_length=200)
    category: str | None = Field(default=None, min_length=1, max_length=200, description="this category and below")
    in_stock: bool | None = None
    min_price: float | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)
    max_price: float | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)


class PinIn(_Strict):
    type: Literal["pin"]
    product_id: str = Field(min_length=1, max_length=200)
    position: int = Field(ge=1, le=MAX_PIN_POSITION, description="1-based")


class HideIn(_Strict):
    type: Literal["hide"]
    product_id: str = Field(min_length=1, max_length=200)


class LiftIn(_Strict):
    type: Literal["boost", "bury"]
    match: MatchIn
    weight: int = Field(default=1, ge=1, le=MAX_WEIGHT)


class RuleIn(_Strict):
    """One rule as the API takes it and the store keeps it."""

    id: str = Field(min_length=1, max_length=64)
    scope: ScopeIn
    action: Annotated[PinIn | HideIn | LiftIn, Field(discriminator="type")]

    @model_validator(mode="after")
    def _valid(self) -> RuleIn:
        self.to_rule()  # the core's checks (a ValueError here is a validation error)
        return self

    def to_rule(self) -> Rule:
        a = self.action
        action: Pin | Hide | Boost | Bury
        if isinstance(a, PinIn):
            action = Pin(a.product_id, a.position)
        elif isinstance(a, HideIn):
            action = Hide(a.product_id)
        else:
            m = a.match
            match = Match(m.brand, m.category, m.in_stock, m.min_price, m.max_price)
            action = Boost(match, a.weight) if a.type == "boost" else Bury(match, a.weight)
        return Rule(self.id, Scope(self.scope.type, self.scope.value), action)


class RuleSetIn(_Strict):
    """The whole rule set (``PUT /v1/admin/rules`` replaces it)."""

    rules: list[RuleIn] = Field(max_length=MAX_RULES)
    note: str | None = Field(default=None, max_length=500, description="why: kept with the version")

    @model_validator(mode="after")
    def _consistent(self) -> RuleSetIn:
        check_rules([r.to_rule() for r in self.rules])
        return self


class RuleVersion(_Strict):
    """One version of the rule set, as its file holds it."""

    version: int = Field(ge=1)
    created_at: float = Field(description="unix time")
    author: str = Field(description="who published it (key:<key id>, or cli:<user>)")
    note: str | None = None
    rollback_of: int | None = Field(default=None, description="the version whose rules this restored")
    digest: str = Field(description="sha256 of the rules' JSON")
    rules: list[RuleIn]

    def audit_details(self) -> dict[str, object]:
        """What the audit log keeps of a change: the version, what it restored, the digest,
        the rule ids and the note."""
        details: dict[str, object] = {"version": self.version, "rollback_of": self.rollback_of}
        details.update(digest=self.digest, rules=[r.id for r in self.rules], note=self.note)
        return details


def rules_digest(rules: list[RuleIn]) -> str:
    body = "[" + ",".join(r.model_dump_json() for r in rules) + "]"
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LiveRules:
    """The current version and its rules indexed by scope (None version: no rules yet)."""

    version: RuleVersion | None
    index: RuleIndex

    @property
    def number(self) -> int | None:
        return self.version.version if self.version is not None else None


NO_RULES = LiveRules(None, RuleIndex(()))


class RuleStore:
    """The versions of the rule set in ``folder`` (created on first write)."""

    def __init__(
        self,
        folder: Path,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        check_every_s: float = 1.0,
    ) -> None:
        self.folder = folder
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self.check_every_s = check_every_s
        self._lock = threading.Lock()
        self._live = NO_RULES
        self._checked_at = -float("inf")

    # --- reading ----------------------------------------------------------------------
    def current(self) -> LiveRules:
        """The highest version, looked for at most every ``check_every_s``: the call on every
        search, a clock read when nothing is due."""
        now = self._monotonic()
        if now - self._checked_at < self.check_every_s:
            return self._live
        with self._lock:
            self._checked_at = now
            self._refresh()
            return self._live

    def _refresh(self) -> None:
        numbers = self._numbers()
        top = numbers[-1] if numbers else None
        if top == self._live.number:
            return
        version = self.get(top) if top is not None else None
        index = RuleIndex([r.to_rule() for r in version.rules]) if version is not None else RuleIndex(())
        self._live = LiveRules(version, index)

    def _numbers(self) -> list[int]:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for name in names if (m := _FILE.fullmatch(name)))

    def _path(self, number: int) -> Path:
        return self.folder / f"v{number:06d}.json"

    def get(self, number: int) -> RuleVersion:
        """One version; NotFoundError when there is none such. A malformed file is an
        ArtifactError naming it."""
        path = self._path(number)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFoundError(f"no rules version {number}") from None
        try:
            version = RuleVersion.model_validate_json(text)
        except ValidationError as exc:
            raise ArtifactError(f"{path}: not a rules version: {exc}") from None
        if version.version != number:
            raise ArtifactError(f"{path}: holds version {version.version}")
        return version

    def versions(self) -> list[RuleVersion]:
        """Every version, newest first."""
        return [self.get(n) for n in reversed(self._numbers())]

    # --- writing ----------------------------------------------------------------------
    def publish(
        self, rules: list[RuleIn], *, author: str, note: str | None = None, rollback_of: int | None = None
    ) -> RuleVersion:
        """Write ``rules`` as the next version and make it current here at once (other
        processes see it at their next check)."""
        check_rules([r.to_rule() for r in rules])
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            while True:
                numbers = self._numbers()
                number = (numbers[-1] if numbers else 0) + 1
                version = RuleVersion(
                    version=number,
                    created_at=self._wall_clock(),
                    author=author,
                    note=note,
                    rollback_of=rollback_of,
                    digest=rules_digest(rules),
                    rules=rules,
                )
                if create_bytes(self._path(number), version.model_dump_json(indent=1).encode()):
                    break  # else another writer took this number: take the next
            self._checked_at = self._monotonic()
            self._refresh()
        return version

    def rollback(self, number: int, *, author: str, note: str | None = None) -> RuleVersion:
        """Publish version ``number``'s rules again, as a new version."""
        old = self.get(number)
        return self.publish(old.rules, author=author, note=note or f"rollback to version {number}", rollback_of=number)
