"""The loopback check reads /proc/net files: real lines in, listeners outside loopback out."""

from __future__ import annotations

from pathlib import Path

from shoprec.cluster import loopback

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def write(proc: Path, tcp: list[str], tcp6: list[str], devices: list[str]) -> Path:
    proc.mkdir(parents=True, exist_ok=True)
    (proc / "tcp").write_text(
        HEADER + "".join(f"   0: {line} 00000000 00:00000000 00000000     0        0 1\n" for line in tcp)
    )
    (proc / "tcp6").write_text(
        HEADER + "".join(f"   0: {line} 00000000 00:00000000 00000000     0        0 1\n" for line in tcp6)
    )
    (proc / "dev").write_text(
        "Inter-|   Receive\n face |bytes\n" + "".join(f"  {d}: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n" for d in devices)
    )
    return proc


def test_loopback_and_wildcard_listeners_with_only_lo_pass(tmp_path: Path) -> None:
    proc = write(
        tmp_path,
        [
            "0100007F:1F90 00000000:0000 0A",  # 127.0.0.1:8080 listening
            "00000000:1A0A 00000000:0000 0A",  # 0.0.0.0:6666 listening (only lo exists)
            "0100007F:C350 0100007F:1F90 01",  # an established connection: not a listener
        ],
        ["00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A"],  # [::1]:6379
        ["lo"],
    )
    found = loopback.check(proc)
    assert found.listeners == [("0.0.0.0", 6666), ("127.0.0.1", 8080), ("::1", 6379)]
    assert found.only_loopback and found.outside == []


def test_a_listener_on_another_address_or_another_interface_fails(tmp_path: Path) -> None:
    proc = write(tmp_path / "a", ["0A00000A:0050 00000000:0000 0A"], [], ["lo"])  # 10.0.0.10:80
    found = loopback.check(proc)
    assert found.outside == [("10.0.0.10", 80)] and not found.only_loopback
    assert found.describe()["outside_loopback"] == ["10.0.0.10:80"]
    other = write(tmp_path / "b", ["0100007F:1F90 00000000:0000 0A"], [], ["eth0", "lo"])
    assert not loopback.check(other).only_loopback  # a wildcard bind would be reachable from eth0


def test_namespace_command_brings_lo_up_first() -> None:
    cmd = loopback.namespace_command(["python", "it's.py"])
    assert cmd[:2] == ["unshare", "-rn"]
    assert cmd[-1] == "ip link set lo up && exec 'python' 'it'\"'\"'s.py'"
