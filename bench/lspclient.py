"""A minimal stdio JSON-RPC client for benches: no pygls on the client side, so we time the server."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any


class RawClient:
    def __init__(
        self,
        argv: list[str],
        on_notify: Callable[[str, Any], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.on_notify = on_notify
        self._next = 0
        self._pending: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._lock = threading.Lock()
        #: Cleared to stop reading the server's stdout (an editor that stalls), set to go on.
        self.reading = threading.Event()
        self.reading.set()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _send(self, obj: dict[str, Any]) -> None:
        body = json.dumps(obj).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def request_async(self, method: str, params: Any) -> tuple[threading.Event, list[Any]]:
        with self._lock:
            self._next += 1
            msg_id = self._next
            slot: tuple[threading.Event, list[Any]] = (threading.Event(), [])
            self._pending[msg_id] = slot
        self._send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return slot

    def request(self, method: str, params: Any, timeout: float = 600) -> Any:
        ev, box = self.request_async(method, params)
        if not ev.wait(timeout):
            raise TimeoutError(method)
        msg = box[0]
        if "error" in msg:
            raise RuntimeError(msg["error"])
        return msg.get("result")

    def command(self, command: str, args: dict[str, Any], timeout: float = 600) -> Any:
        return self.request(
            "workspace/executeCommand", {"command": command, "arguments": [args]}, timeout
        )

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            self.reading.wait()
            length = 0
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            msg = json.loads(out.read(length))
            if "id" in msg and "method" in msg:  # a request from the server
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif "id" in msg:
                with self._lock:
                    slot = self._pending.pop(msg["id"], None)
                if slot:
                    slot[1].append(msg)
                    slot[0].set()
            elif self.on_notify is not None:
                self.on_notify(msg["method"], msg.get("params"))

    def initialize(self, options: dict[str, Any], progress: bool = True) -> float:
        t0 = time.perf_counter()
        caps = {"window": {"workDoneProgress": progress}}
        self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": None,
                "capabilities": caps,
                "initializationOptions": options,
            },
        )
        self.notify("initialized", {})
        return time.perf_counter() - t0

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
