"""Is this network namespace confined to loopback? Ray binds non-loopback addresses (and many
ports), so the tests and the benchmarks run it in a namespace of its own with only ``lo`` up
(``unshare -rn``) and check, from inside, that the namespace has no interface but ``lo`` and that no
listening TCP socket is bound to an address outside 127.0.0.0/8 or ``::1`` (a wildcard
listener is then reachable over loopback only).

Read from ``/proc/net/tcp``, ``/proc/net/tcp6`` and ``/proc/net/dev`` of the calling
process's namespace: no tool needed."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

TCP_LISTEN = "0A"
WILDCARDS = frozenset({ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")})


def _address(hex_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A ``/proc/net/tcp{,6}`` address (hex, each 32-bit word in host byte order: little endian)."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def listening(proc_net: Path = Path("/proc/net")) -> list[tuple[str, int]]:
    """Every listening TCP socket of this namespace: ``(address, port)``."""
    found: list[tuple[str, int]] = []
    for name in ("tcp", "tcp6"):
        path = proc_net / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if len(cols) < 4 or cols[3] != TCP_LISTEN:
                continue
            addr, port = cols[1].split(":")
            found.append((str(_address(addr)), int(port, 16)))
    return sorted(set(found))


def interfaces(proc_net: Path = Path("/proc/net")) -> list[str]:
    """The network interfaces of this namespace (``/proc/net/dev``; ``/sys/class/net`` shows
    the namespace sysfs was mounted in, not the caller's)."""
    lines = (proc_net / "dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines if ":" in line)


def _outside(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip in WILDCARDS:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return not (ip.is_loopback or (mapped is not None and mapped.is_loopback))


@dataclass(frozen=True)
class Confinement:
    """What :func:`check` found."""

    listeners: list[tuple[str, int]]
    interfaces: list[str]
    outside: list[tuple[str, int]] = field(default_factory=list)

    @property
    def only_loopback(self) -> bool:
        return not self.outside and self.interfaces == ["lo"]

    def describe(self) -> dict[str, object]:
        return {
            "only_loopback": self.only_loopback,
            "interfaces": self.interfaces,
            "listeners": [f"{a}:{p}" for a, p in self.listeners],
            "outside_loopback": [f"{a}:{p}" for a, p in self.outside],
        }


def check(proc_net: Path = Path("/proc/net")) -> Confinement:
    """The listeners and interfaces of this namespace, and the listeners outside loopback."""
    found = listening(proc_net)
    return Confinement(found, interfaces(proc_net), [(a, p) for a, p in found if _outside(a)])


def namespace_command(argv: list[str]) -> list[str]:
    """``argv`` run in new user, network, PID and mount namespaces with only ``lo`` up
    (``unshare -rn``; ``lo`` starts down there). When ``argv``'s process exits, the kernel ends
    every process left in the PID namespace (Ray's among them)."""
    script = "ip link set lo up && exec " + " ".join(_sh_quote(a) for a in argv)
    return ["unshare", "-rn", "--pid", "--fork", "--mount-proc", "sh", "-c", script]


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"
