"""A session manager's connection to the session host (``ktl_lsp/host/server.py``).

Sessions started or attached through it are adopted by the manager (``SessionManager.adopt``):
they are shown like its own, while the host runs and records them. If the connection is lost
(the host died), they end here as interrupted and the store says so too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ktl_lsp.host.protocol import (
    HostError,
    HostPaths,
    frame_of,
    pack,
    read_message,
    session_of,
    spec_to_wire,
)
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager
from ktl_lsp.sessions.model import Session, State

log = logging.getLogger(__name__)

#: How long a host that was just started may take to listen.
START_TIMEOUT_S = 15.0

OnReply = Callable[[dict[str, Any]], None]


async def open_connection(
    paths: HostPaths,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A connection to the running host, None when none listens (no socket, or a stale one);
    HostError for a socket or directory that is not ours."""
    paths.private_dir()
    if not paths.check_socket():
        return None
    try:
        return await asyncio.open_unix_connection(str(paths.socket))
    except (ConnectionRefusedError, FileNotFoundError):
        return None


def start_host(store: Path, paths: HostPaths, idle_timeout: float) -> subprocess.Popen[bytes]:
    """Starts ``ktl-lsp host`` in a session of its own, so the editor's process group (and its
    language server) can be killed without it. Of two started at once only one serves."""
    argv = [
        sys.executable,
        "-m",
        "ktl_lsp",
        "--store",
        str(store),
        "--log-file",
        str(paths.log),
        "host",
        "--idle-timeout",
        f"{idle_timeout:g}",
    ]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    # Reaped when it ends, so a dead host is never taken for a live owner (a zombie).
    threading.Thread(target=proc.wait, name="ktl-host-reaper", daemon=True).start()
    return proc


async def connect(
    paths: HostPaths, store: Path, start: bool, idle_timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A connection to the host of ``store``; with ``start``, a host is started first when
    none listens (and waited for)."""
    conn = await open_connection(paths)
    if conn is not None or not start:
        return conn
    proc = await asyncio.to_thread(start_host, store, paths, idle_timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        conn = await open_connection(paths)
        if conn is not None:
            return conn
        # Exit 0: another host won the race to serve the store (it is connected to next time).
        if proc.returncode not in (None, 0):
            break
    raise HostError(f"the session host did not start (its log: {paths.log})")


class HostClient:
    """Runs and attaches sessions in the host for ``manager``; implements its ``Controller``."""

    def __init__(
        self,
        manager: SessionManager,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.manager = manager
        self.reader = reader
        self.writer = writer
        self.sessions: dict[str, LiveSession] = {}
        self._next_id = 0
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], OnReply | None]] = {}
        self.closed = False
        self._reading = asyncio.ensure_future(self._read())
        manager.flushers.append(self.flush)

    # requests -----------------------------------------------------------------------------
    async def request(
        self, op: str, on_reply: OnReply | None = None, payload: bytes = b"", **fields: Any
    ) -> dict[str, Any]:
        """Sends ``op`` and waits for its answer; ``on_reply`` runs with it as soon as it is
        read, before any message after it (frames of a session it started)."""
        if self.closed:
            raise HostError("the connection to the session host is closed")
        self._next_id += 1
        rid = self._next_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (fut, on_reply)
        self.writer.write(pack({"op": op, "id": rid, **fields}, payload))
        return await fut

    def tell(self, op: str, payload: bytes = b"", **fields: Any) -> None:
        """Sends ``op`` without waiting (a refusal is logged by the host)."""
        if not self.closed:
            self.writer.write(pack({"op": op, **fields}, payload))

    async def run(
        self, spec: RunSpec, redact: dict[str, Any], adopted: Callable[[LiveSession], None]
    ) -> LiveSession:
        """Starts ``spec`` in the host; ``adopted`` sees the session before its first output."""
        wire = spec_to_wire(spec)
        # The child gets this process's environment and directory, as it would started here.
        wire["env"] = {**os.environ, **(spec.env or {})}
        wire["cwd"] = spec.cwd or os.getcwd()
        return await self._adopting("run", adopted, spec=wire, redact=redact)

    async def port_forward(
        self, request: dict[str, Any], adopted: Callable[[LiveSession], None]
    ) -> LiveSession:
        """Starts a port-forward in the host (``request``: see ``ktl_lsp/host/forwards.py``)."""
        return await self._adopting("portForward", adopted, **request)

    async def forwards(self, session_id: str) -> list[dict[str, Any]] | None:
        """A port-forward's URLs once it listens; None when it ended first."""
        found = (await self.request("forwards", sid=session_id)).get("forwards")
        return list(found) if isinstance(found, list) else None

    async def attach(self, session_id: str, adopted: Callable[[LiveSession], None]) -> LiveSession:
        return await self._adopting("attach", adopted, sid=session_id)

    async def _adopting(
        self, op: str, adopted: Callable[[LiveSession], None], **fields: Any
    ) -> LiveSession:
        got: list[LiveSession] = []

        def adopt(answer: dict[str, Any]) -> None:
            live = self.manager.adopt(session_of(answer), self)
            self.sessions[live.id] = live
            got.append(live)
            adopted(live)

        await self.request(op, adopt, **fields)
        return got[0]

    async def flush(self) -> None:
        """Waits until the host has stored every frame it recorded so far."""
        if not self.closed:
            with contextlib.suppress(HostError):
                await self.request("flush")

    # Controller ---------------------------------------------------------------------------
    def input(self, session_id: str, data: str) -> None:
        self.tell("input", data.encode("utf-8"), sid=session_id)

    def resize(self, session_id: str, cols: int, rows: int) -> None:
        self.tell("resize", sid=session_id, cols=cols, rows=rows)

    def signal(self, session_id: str, name: str) -> None:
        self.tell("signal", sid=session_id, signal=name)

    def cancel(self, session_id: str) -> None:
        self.tell("cancel", sid=session_id)

    # what the host sends ------------------------------------------------------------------
    async def _read(self) -> None:
        try:
            while True:
                message = await read_message(self.reader)
                if message is None:
                    break
                self._dispatch(*message)
        except Exception:
            log.exception("the session host's connection failed")
        finally:
            await self._lost()

    def _dispatch(self, header: dict[str, Any], payload: bytes) -> None:
        ev = header.get("ev")
        if ev == "frame":
            live = self.sessions.get(header["sid"])
            if live is not None:
                self.manager.relay(live, frame_of(header, payload))
        elif ev == "state":
            ended = session_of(header["session"])
            live = self.sessions.pop(ended.id, None)
            if live is not None:
                self.manager.ended_elsewhere(live, ended)
        elif "id" in header:
            fut, on_reply = self._pending.pop(header["id"], (None, None))
            if fut is None or fut.done():
                return
            if "error" in header:
                fut.set_exception(HostError(str(header["error"])))
                return
            answer = header.get("ok") or {}
            if on_reply is not None:
                on_reply(answer)
            fut.set_result(answer)

    async def _lost(self) -> None:
        """The host went away: what ran there can never finish now."""
        self.closed = True
        with contextlib.suppress(ValueError):
            self.manager.flushers.remove(self.flush)
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(HostError("the session host stopped"))
        self._pending.clear()
        lost, self.sessions = list(self.sessions.values()), {}
        for live in lost:
            gone = live.session
            ended = Session(
                id=gone.id,
                kind=gone.kind,
                title=gone.title,
                state=State.INTERRUPTED,
                error="the session host stopped while the session was running",
            )
            self.manager.ended_elsewhere(live, ended)
        # The host marks nothing as it dies: the store marks its sessions once their owner,
        # the host's process, is seen gone (reaped).
        for _ in range(25 if lost else 0):
            await asyncio.sleep(0.2)
            with contextlib.suppress(Exception):
                if await self.manager.mark_interrupted():
                    break

    def close(self) -> None:
        self.writer.close()
