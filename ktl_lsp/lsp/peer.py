"""Who is on the other end of a loopback TCP connection (Linux), for ``ktl-lsp --tcp``.

The language server has no token: whoever talks to it can run commands as the user. Over stdio
that is the editor the user started; over TCP it could be any local account, so a connection is
served only when its peer runs as the same user. Loopback TCP has no ``SO_PEERCRED``: the peer's
socket is found in ``/proc/net/tcp{,6}`` (its local address is our peer address, its remote
address ours), whose ``uid`` column is its owner.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator

Address = tuple[str, int]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _v4(ip: str) -> str | None:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address):
        addr = addr.ipv4_mapped  # type: ignore[assignment]
    if addr is None:
        return None
    (word,) = struct.unpack("=I", socket.inet_aton(str(addr)))
    return f"{word:08X}"


def _v6(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv4Address):
        addr = ipaddress.IPv6Address(f"::ffff:{addr}")  # a dual-stack socket's IPv4 peer
    words = struct.unpack("=4I", socket.inet_pton(socket.AF_INET6, str(addr)))
    return "".join(f"{w:08X}" for w in words)


def _rows(ours: Address, peer: Address) -> Iterator[tuple[str, str, str]]:
    """(table, peer's local address, peer's remote address) as /proc prints them: each 32-bit
    word in host byte order, in hex, then the port."""
    ours_ip, peer_ip = ours[0].split("%", 1)[0], peer[0].split("%", 1)[0]
    ours_v4, peer_v4 = _v4(ours_ip), _v4(peer_ip)
    if ours_v4 and peer_v4:
        yield "/proc/net/tcp", f"{peer_v4}:{peer[1]:04X}", f"{ours_v4}:{ours[1]:04X}"
    yield "/proc/net/tcp6", f"{_v6(peer_ip)}:{peer[1]:04X}", f"{_v6(ours_ip)}:{ours[1]:04X}"


def peer_uid(ours: Address, peer: Address) -> int | None:
    """The uid owning the peer's end of the connection ``ours`` <-> ``peer``; None when it is
    not found (not Linux, or the peer is gone)."""
    try:
        candidates = list(_rows(ours, peer))
    except (ValueError, OSError):
        return None
    for table, local, remote in candidates:
        try:
            with open(table) as fh:
                rows = fh.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 7 and cols[1] == local and cols[2] == remote:
                return int(cols[7])
    return None
