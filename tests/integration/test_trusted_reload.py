"""Trust at load time over a real server on loopback: signed versions swap in under load,
tampered / unsigned / untrusted / wrongly encrypted ones are refused while the current
version keeps answering, and the session's audit log verifies (and breaks where edited).

The swap under load runs its server in a process of its own (its clients are threads of this
one); the others need only a real socket and run it in a thread here."""

from __future__ import annotations

import gc
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoprec.cli import main
from shoprec.http.app import create_app
from shoprec.security import audit as audit_log
from shoprec.security import crypto
from shoprec.security.apikeys import KeyStore
from shoprec.settings import Settings
from support.live import FULL_QUALITY, LiveServer, ServerProcess, wait_ready


def _version(folder: Path, tag: str) -> Path:
    """Give a copied, unsigned artifacts folder its own version id (rewrites the manifest)."""
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["version"] = tag
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tiny_static_artifacts: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("trust")
    trusted, trusted_pub = crypto.generate_signing_key(root / "release.key")
    stranger, _ = crypto.generate_signing_key(root / "stranger.key")
    data_key_file = crypto.generate_data_key(root / "data.key")
    other_key = crypto.load_data_key(key_file=crypto.generate_data_key(root / "other-data.key"))

    def copy(name: str, tag: str) -> Path:
        out = root / name
        shutil.copytree(tiny_static_artifacts, out)
        (out / crypto.SIGNATURE).unlink(missing_ok=True)
        return _version(out, tag)

    v1 = copy("v1", "v1")
    crypto.sign_artifacts(v1, trusted, signer="release")
    v2 = copy("v2", "v2")
    crypto.sign_artifacts(v2, trusted, signer="release")

    weight = copy("tampered-weight", "tw")
    crypto.sign_artifacts(weight, trusted, signer="release")
    with (weight / "encoder" / "model.onnx").open("r+b") as f:  # flip one byte of the weights
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))

    manifest = copy("tampered-manifest", "tm")
    crypto.sign_artifacts(manifest, trusted, signer="release")
    text = (manifest / "manifest.json").read_text()
    (manifest / "manifest.json").write_text(text.replace('"version": "tm"', '"version": "tm-evil"'))

    unsigned = copy("unsigned", "un")
    untrusted = copy("untrusted", "ut")
    crypto.sign_artifacts(untrusted, stranger, signer="someone else")

    encrypted = copy("encrypted", "enc")
    crypto.encrypt_artifacts(encrypted, crypto.load_data_key(key_file=data_key_file))
    crypto.sign_artifacts(encrypted, trusted, signer="release")
    wrong_key = copy("encrypted-other-key", "enc2")
    crypto.encrypt_artifacts(wrong_key, other_key)
    crypto.sign_artifacts(wrong_key, trusted, signer="release")
    return {
        "root": root,
        "trusted_pub": trusted_pub,
        "data_key_file": data_key_file,
        "v1": v1,
        "v2": v2,
        "bad": {
            "tampered weight file": (weight, "encoder/model.onnx"),
            "tampered manifest": (manifest, "bad signature"),
            "unsigned": (unsigned, "manifest.sig"),
            "untrusted signer": (untrusted, "untrusted signer"),
            "wrong encryption key": (wrong_key, "wrong data key"),
        },
        "encrypted": encrypted,
    }


Served = tuple[httpx.Client, dict[str, str], Path]


def _trusting(world: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], str, str]:
    """Settings that serve v1 and trust the release key, with an audit log; an admin and a reader key."""
    keys = KeyStore(tmp_path / "keys.json", time.time, iterations=1)
    _, admin = keys.create("ops", ["admin"])
    _, reader = keys.create("storefront", ["search"])
    settings = {
        "artifacts": world["v1"],
        "data_dir": tmp_path,
        "trusted_keys": (world["trusted_pub"],),
        "data_key_file": world["data_key_file"],
        "keys_file": tmp_path / "keys.json",
        "audit_log": tmp_path / "audit.jsonl",
        "audit_search_sample_rate": 0.25,
        **FULL_QUALITY,  # these tests are about versions and trust, not the ladder or shedding
    }
    return settings, admin, reader


@pytest.fixture
def served(live_server: Callable[[Any], LiveServer], world: dict[str, Any], tmp_path: Path) -> Iterator[Served]:
    settings, admin, reader = _trusting(world, tmp_path)
    import random

    server = live_server(create_app(Settings.load(environ={}, **settings), audit_rng=random.Random(7)))
    with server.client(headers={"X-API-Key": reader}) as client:
        wait_ready(client)
        yield client, {"Authorization": f"Bearer {admin}"}, tmp_path / "audit.jsonl"


@pytest.fixture
def served_apart(
    server_process: Callable[..., ServerProcess], world: dict[str, Any], tmp_path: Path
) -> Iterator[Served]:
    """The same, in a process of its own, and every search audited (no sampling to be lucky with)."""
    settings, admin, reader = _trusting(world, tmp_path)
    server = server_process(**{**settings, "audit_search_sample_rate": 1.0})
    with server.client(headers={"X-API-Key": reader}) as client:
        yield client, {"Authorization": f"Bearer {admin}"}, tmp_path / "audit.jsonl"


def _serving(client: httpx.Client, admin: dict[str, str]) -> dict[str, Any]:
    r = client.get("/v1/admin/model", headers=admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _search_ok(client: httpx.Client) -> str:
    r = client.get("/v1/search", params={"q": "cordless drill", "k": 3})
    assert r.status_code == 200, r.text
    assert r.json()["results"]
    version: str = r.json()["model_version"]
    return version


def test_refused_versions_keep_the_current_one_serving(
    served: tuple[httpx.Client, dict[str, str], Path], world: dict[str, Any]
) -> None:
    client, admin, log_path = served
    first = _serving(client, admin)
    assert first["version"] == "v1" and first["signed_by"] is not None and first["encrypted"] is False
    for case, (folder, names) in world["bad"].items():
        r = client.post("/v1/admin/reload", json={"artifacts": str(folder)}, headers=admin)
        assert r.status_code == 422, (case, r.text)
        body = r.json()
        assert body["error"] == "artifact_refused", case
        assert names in body["detail"] and "v1 keeps serving" in body["detail"], (case, body)
        assert _search_ok(client) == "v1", case
        assert _serving(client, admin)["version"] == "v1", case
    refused = [e for e in _entries(log_path) if e["action"] == "artifact.refused"]
    assert {e["details"]["error"] for e in refused} == {
        "integrity_error",
        "bad_signature",
        "unsigned",
        "untrusted_signer",
        "decryption_error",
    }
    assert all(e["actor"].startswith("key:") and e["details"]["serving"] == "v1" for e in refused)


def test_encrypted_version_is_decrypted_in_memory_and_served(
    served: tuple[httpx.Client, dict[str, str], Path], world: dict[str, Any]
) -> None:
    client, admin, _ = served
    assert not list(world["encrypted"].rglob("*.npy"))  # nothing in plain text on disk
    r = client.post("/v1/admin/reload", json={"artifacts": str(world["encrypted"])}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == "enc" and r.json()["encrypted"] is True
    ids = [h["id"] for h in client.get("/v1/search", params={"q": "cordless drill", "k": 3}).json()["results"]]
    assert set(ids) & {"T000", "T024"}
    rec = client.get("/v1/recommend", params={"k": 3})
    assert rec.status_code == 200 and len(rec.json()["results"]) == 3, rec.text  # the recommender decrypted too


def test_a_reload_stops_the_old_versions_tasks(
    live_server: Callable[[Any], LiveServer], world: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A drained version's batcher task is stopped and awaited, on the reload and at shutdown:
    asyncio never finds a task of it destroyed while pending."""
    settings, admin, reader = _trusting(world, tmp_path)
    app = create_app(Settings.load(environ={}, **settings))
    server = live_server(app)
    accelerated = app.state.services.accelerated
    with caplog.at_level(logging.WARNING, logger="asyncio"), server.client(headers={"X-API-Key": reader}) as client:
        wait_ready(client)
        assert _search_ok(client) == "v1"  # its query went through v1's batcher
        [(v1, batcher)] = list(accelerated._batchers.items())
        v1_task = batcher._task
        assert v1_task is not None and not v1_task.done()
        r = client.post("/v1/admin/reload", json={"artifacts": str(world["v2"])}, headers={"X-API-Key": admin})
        assert r.status_code == 200 and r.json()["version"] == "v2", r.text
        assert _search_ok(client) == "v2"
        deadline = time.monotonic() + 60
        while v1 in accelerated._batchers:  # drained once the reload's own lease ended
            assert time.monotonic() < deadline, "v1's batcher was never retired"
            time.sleep(0.01)
        assert v1_task.done()  # stopped and awaited, not dropped while pending
        gc.collect()
        assert _search_ok(client) == "v2"
        [v2_task] = [b._task for b in accelerated._batchers.values()]
        server.server.should_exit = True  # shutdown stops v2's batcher too
    deadline = time.monotonic() + 60
    while accelerated._batchers:
        assert time.monotonic() < deadline, "the server did not stop its batchers"
        time.sleep(0.01)
    assert v2_task is not None and v2_task.done()
    gc.collect()
    pending = [r.getMessage() for r in caplog.records if "destroyed but it is pending" in r.getMessage()]
    assert not pending, pending


def test_swap_under_load_fails_no_request(served_apart: Served, world: dict[str, Any]) -> None:
    client, admin, log_path = served_apart
    url = str(client.base_url)
    reader_headers = dict(client.headers)
    failures: list[str] = []
    seen: list[set[str]] = [set() for _ in range(4)]
    swapped = threading.Event()
    after_swap = [0] * 4

    def hammer(i: int) -> None:
        with httpx.Client(base_url=url, headers=reader_headers, timeout=30) as c:
            while after_swap[i] < 15:
                try:
                    r = c.get("/v1/search", params={"q": ["drill", "couch", "headphones"][after_swap[i] % 3], "k": 5})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                    continue
                seen[i].add(r.json()["model_version"])
                if swapped.is_set():
                    after_swap[i] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    while not all(seen):  # every thread has been served by v1 before the swap starts
        assert not failures, failures
        time.sleep(0.01)
    r = client.post("/v1/admin/reload", json={"artifacts": str(world["v2"])}, headers=admin)
    swapped.set()
    for t in threads:
        t.join(timeout=120)
    assert r.status_code == 200, r.text
    assert not failures, failures[:5]
    assert all(s == {"v1", "v2"} for s in seen), seen
    assert _serving(client, admin)["version"] == "v2"
    loads = [e["details"] for e in _entries(log_path) if e["action"] == "model.load"]
    assert [(d["version"], d["previous"]) for d in loads] == [("v1", None), ("v2", "v1")]
    sampled = [e["details"] for e in _entries(log_path) if e["action"] == "search"]
    assert sampled and all(d["model_version"] in {"v1", "v2"} and d["results"] for d in sampled)


def _entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_session_audit_log_verifies_and_any_edit_breaks_it_at_that_line(
    served: tuple[httpx.Client, dict[str, str], Path],
    world: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, admin, log_path = served
    client.post("/v1/admin/reload", json={"artifacts": str(world["bad"]["unsigned"][0])}, headers=admin)
    for _ in range(8):
        _search_ok(client)
    lines = log_path.read_text().splitlines()
    actions = [json.loads(x)["action"] for x in lines]
    assert {"model.load", "admin.request", "artifact.refused", "search"} <= set(actions)
    assert main(["audit", "verify", "--log", str(log_path)]) == 0
    for i in range(len(lines)):
        entry = json.loads(lines[i])
        entry["actor"] = entry["actor"] + "x"
        edited = tmp_path / f"edited-{i}.jsonl"
        edited.write_text("\n".join([*lines[:i], json.dumps(entry), *lines[i + 1 :]]) + "\n")
        result = audit_log.verify(edited)
        assert not result.ok and result.first_bad_line == i + 1, (i, result)
    capsys.readouterr()
    assert main(["audit", "verify", "--log", str(tmp_path / f"edited-{len(lines) - 1}.jsonl")]) == 1
    assert f"line {len(lines)}" in capsys.readouterr().err


def test_registry_promotion_and_rollback_reach_a_running_service(
    live_server: Callable[[Any], LiveServer], world: dict[str, Any], tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    for tag in ("v1", "v2"):
        shutil.copytree(world[tag], registry / "versions" / tag / "artifacts")

    def point(tag: str) -> None:
        (registry / "CURRENT.tmp").write_text(json.dumps({"version": tag}))
        (registry / "CURRENT.tmp").replace(registry / "CURRENT")

    point("v1")
    _, reader = KeyStore(tmp_path / "keys.json", time.time, iterations=1).create("storefront", ["search"])
    settings = Settings.load(
        environ={},
        registry=registry,
        registry_poll_s=0.05,
        data_dir=tmp_path,
        trusted_keys=(world["trusted_pub"],),
        keys_file=tmp_path / "keys.json",
        **FULL_QUALITY,
    )
    with live_server(create_app(settings)).client(headers={"X-API-Key": reader}) as client:
        wait_ready(client)
        assert _search_ok(client) == "v1"
        for tag in ("v2", "v1"):  # a promotion, then a rollback
            point(tag)
            deadline = time.monotonic() + 60
            while _search_ok(client) != tag:  # every answer on the way is a 200 from one version
                assert time.monotonic() < deadline, f"{tag} was not picked up"
