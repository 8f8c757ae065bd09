"""Finding the owner of a loopback TCP peer through /proc (what `ktl-lsp --tcp` checks)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator

import pytest

from ktl_lsp.lsp.peer import is_loopback, peer_uid

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/net/tcp")


def connected_pair(family: int, host: str) -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname()[:2])
        server, _ = listener.accept()
        try:
            yield server, client
        finally:
            client.close()
            server.close()


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")], ids=["v4", "v6"]
)
def test_the_peer_of_a_loopback_connection_is_this_user(family: int, host: str) -> None:
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        pairs = connected_pair(family, host)
        server, _ = next(pairs)
    except OSError as exc:
        pytest.skip(f"cannot use {host}: {exc}")
    try:
        assert peer_uid(server.getsockname()[:2], server.getpeername()[:2]) == os.getuid()
        # Our own end of the connection is not the peer's: swapping the roles finds ours.
        assert peer_uid(server.getpeername()[:2], server.getsockname()[:2]) == os.getuid()
    finally:
        pairs.close()


def test_a_connection_that_does_not_exist_has_no_owner() -> None:
    assert peer_uid(("127.0.0.1", 1), ("127.0.0.1", 2)) is None
    assert peer_uid(("not an address", 1), ("127.0.0.1", 2)) is None


def test_loopback_hosts() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.10", "example.com", ""]))
