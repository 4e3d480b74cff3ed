"""API keys with roles (shoprec.security.apikeys)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from shoprec.errors import NotFoundError, RequestError
from shoprec.security import apikeys
from shoprec.security.apikeys import ApiKey, KeyStore


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> KeyStore:
    # Few iterations: the tests check behaviour, not the cost of PBKDF2.
    return KeyStore(tmp_path / "keys.json", clock, iterations=10)


def test_create_then_authenticate(store: KeyStore, clock: FakeClock) -> None:
    key_id, plaintext = store.create("storefront", ["search"], rate_limit_per_s=20)
    assert plaintext.startswith(f"sr_{key_id}_")
    key = store.authenticate(plaintext)
    assert key == ApiKey(key_id, "storefront", frozenset({"search"}), 20.0, clock.now, None)
    assert store.authenticate(plaintext) == key  # the cached path agrees


def test_stored_file_holds_no_secret(store: KeyStore) -> None:
    key_id, plaintext = store.create("storefront", ["search"])
    secret = plaintext.split("_", 2)[2]
    text = store.path.read_text()
    assert secret not in text and plaintext not in text
    data = json.loads(text)
    entry = data["keys"][key_id]
    assert entry["kdf"] == "pbkdf2_sha256" and entry["salt"] and entry["hash"]
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_salts_differ_per_key(store: KeyStore) -> None:
    a, _ = store.create("a", ["search"])
    b, _ = store.create("b", ["search"])
    keys = json.loads(store.path.read_text())["keys"]
    assert keys[a]["salt"] != keys[b]["salt"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # wrong secret
        lambda k: k + "x",  # longer secret
        lambda k: k.replace("sr_", "xx_", 1),  # wrong prefix
        lambda k: "sr_" + "0" * 16 + "_" + k.split("_", 2)[2],  # unknown key id
        lambda k: "",
        lambda k: "sr_",
        lambda k: k.split("_", 2)[0] + "_" + k.split("_", 2)[1],  # no secret
    ],
    ids=["wrong-secret", "longer", "prefix", "unknown-id", "empty", "bare-prefix", "no-secret"],
)
def test_wrong_keys_are_refused(store: KeyStore, mangle: Callable[[str], str]) -> None:
    _, plaintext = store.create("storefront", ["search"])
    assert store.authenticate(mangle(plaintext)) is None
    # ... also once the right key has been seen (and cached)
    assert store.authenticate(plaintext) is not None
    assert store.authenticate(mangle(plaintext)) is None


def test_revoke(store: KeyStore, clock: FakeClock) -> None:
    key_id, plaintext = store.create("storefront", ["search"])
    assert store.authenticate(plaintext) is not None
    clock.now += 60
    revoked = store.revoke(key_id)
    assert revoked.revoked and revoked.revoked_at == clock.now
    assert store.authenticate(plaintext) is None
    clock.now += 60
    assert store.revoke(key_id).revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(NotFoundError):
        store.revoke("0" * 16)


def test_list_never_shows_secrets(store: KeyStore, clock: FakeClock) -> None:
    a, _ = store.create("a", ["search"])
    clock.now += 1
    b, _ = store.create("b", ["events", "search"], rate_limit_per_s=5)
    store.revoke(a)
    listed = store.list()
    assert [k.key_id for k in listed] == [a, b]
    assert [k.key_id for k in store.list(include_revoked=False)] == [b]
    assert set(listed[1].to_dict()) == {
        "key_id",
        "name",
        "roles",
        "rate_limit_per_s",
        "created_at",
        "revoked_at",
    }
    assert listed[1].to_dict()["roles"] == ["events", "search"]
    assert store.get(b) == listed[1]


def test_roles_and_admin_implies_all(store: KeyStore) -> None:
    _, search = store.create("s", ["search"])
    _, admin = store.create("root", ["admin"])
    s, a = store.authenticate(search), store.authenticate(admin)
    assert s is not None and a is not None
    assert s.allows("search") and not s.allows("events") and not s.allows("admin")
    assert all(a.allows(role) for role in apikeys.ROLES)
    assert apikeys.require(a, "events") is a
    with pytest.raises(apikeys.PermissionDeniedError, match="lacks the 'events' role") as e403:
        apikeys.require(s, "events")
    assert e403.value.status_code == 403
    with pytest.raises(apikeys.AuthenticationError) as e401:
        apikeys.require(None, "search")
    assert e401.value.status_code == 401


@pytest.mark.parametrize(
    ("name", "roles", "rate"),
    [
        ("x", ["superuser"], None),
        ("x", [], None),
        ("", ["search"], None),
        ("x", ["search"], 0.0),
        ("x", ["search"], float("nan")),
    ],
    ids=["unknown-role", "no-role", "no-name", "zero-rate", "nan-rate"],
)
def test_bad_create_requests(store: KeyStore, name: str, roles: list[str], rate: float) -> None:
    with pytest.raises(RequestError):
        store.create(name, roles, rate_limit_per_s=rate)  # type: ignore[arg-type]
    assert store.list() == []


def test_persisted_and_shared_between_stores(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "keys.json"
    server = KeyStore(path, clock, iterations=10)
    cli = KeyStore(path, clock, iterations=10)
    key_id, plaintext = cli.create("storefront", ["search"])
    assert server.authenticate(plaintext) is not None  # the server sees the CLI's new key
    cli.revoke(key_id)
    assert server.authenticate(plaintext) is None  # and its revocation, even though cached
    assert KeyStore(path, clock).get(key_id).revoked


def test_malformed_store_is_a_clear_error(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{oops")
    with pytest.raises(apikeys.KeyStoreError, match="unreadable key store"):
        KeyStore(path, clock)
    path.write_text(json.dumps({"version": 9, "keys": {}}))
    with pytest.raises(apikeys.KeyStoreError, match="version"):
        KeyStore(path, clock)


def test_parse_key() -> None:
    assert apikeys.parse_key("sr_0123456789abcdef_" + "a_b-c" * 5) == (
        "0123456789abcdef",
        "a_b-c" * 5,
    )
    assert apikeys.parse_key("sr_0123456789ABCDEF_" + "a" * 20) is None
    assert apikeys.parse_key("Bearer sr_x") is None
