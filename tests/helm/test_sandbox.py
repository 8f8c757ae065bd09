"""The render worker's network sandbox, in a process of its own (it cannot be undone)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import socket, subprocess, threading
from ktl_lsp.helm.sandbox import forbid_network
print(forbid_network())
def attempt(family):
    try:
        socket.socket(family, socket.SOCK_STREAM).close()
        return "open"
    except OSError as exc:
        return exc.strerror
found = {}
def in_thread():
    found["thread"] = attempt(socket.AF_INET)
t = threading.Thread(target=in_thread); t.start(); t.join()
print(attempt(socket.AF_INET), attempt(socket.AF_INET6), found["thread"])
a, b = socket.socketpair(); a.sendall(b"x"); print(b.recv(1).decode())
print(subprocess.run(["true"]).returncode)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux's")
def test_no_ip_socket_in_any_thread_but_pipes_and_unix_sockets_work() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines() == [
        "None",
        "Permission denied Permission denied Permission denied",
        "x",
        "0",
    ], done.stderr
