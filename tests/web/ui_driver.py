"""Headless Chromium through playwright-core (tests/web/ui/driver.js), driven from asyncio.

Used by tests/web/test_ui.py and bench/bench_gateway.py. Needs node, tests/web/ui/node_modules
(scripts/system-deps.d/web-ui.sh) and Debian's /usr/bin/chromium (chromium.sh): ``missing()``
says what is not there.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

UI_DIR = Path(__file__).resolve().parent / "ui"
CHROMIUM = os.environ.get("KTL_TEST_CHROMIUM", "/usr/bin/chromium")


def missing() -> str | None:
    """What is missing to run the browser, or None."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return f"chromium ({CHROMIUM}): run scripts/system-deps"
    if shutil.which("node") is None:
        return "node: run scripts/system-deps"
    if not (UI_DIR / "node_modules" / "playwright-core").is_dir():
        return "tests/web/ui/node_modules: run scripts/system-deps.d/web-ui.sh"
    return None


class DriverError(RuntimeError):
    pass


class Browser:
    """One page in headless Chromium. ``await Browser.start()``, then ``call(op, ...)``."""

    def __init__(self, proc: asyncio.subprocess.Process, version: str) -> None:
        self.proc = proc
        self.version = version
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, timeout: float = 60) -> Browser:
        env = dict(os.environ)
        env["KTL_TEST_CHROMIUM"] = CHROMIUM if os.path.exists(CHROMIUM) else "chromium"
        env["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(UI_DIR / "driver.js"),
            cwd=UI_DIR,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 << 20,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        hello = json.loads(line or b'{"ok": false, "error": "the driver exited"}')
        if not hello.get("ok"):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise DriverError(f"cannot start chromium: {hello.get('error')}")
        return cls(proc, str(hello.get("value")))

    async def call(self, op: str, *, deadline: float = 60, **args: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self._lock:
            ident = next(self._ids)
            self.proc.stdin.write(json.dumps({"id": ident, "op": op, **args}).encode() + b"\n")
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), deadline)
        if not line:
            raise DriverError(f"{op}: the driver exited")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise DriverError(f"{op} {args}: {answer.get('error')}")
        return answer.get("value")

    async def eval(self, expr: str, timeout: float = 60) -> Any:
        return await self.call("eval", deadline=timeout, expr=expr)

    async def wait(self, expr: str, timeout: float = 10) -> Any:
        args = {"expr": expr, "timeout": int(timeout * 1000)}
        return await self.call("wait", deadline=timeout + 5, **args)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call("close"), 15)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()
