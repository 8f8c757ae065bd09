"""A session manager's connection to the session host (``ktl_lsp/host/server.py``).

Sessions started or attached through it are adopted by the manager (``SessionManager.adopt``):
they are shown like its own, while the host runs and records them. If the connection drops
while the host lives, it is made again and the sessions adopted again, what they wrote meanwhile
read from the store; if the host died, they end here as interrupted and the store says so too.
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

#: The waits before each try to connect again to a host whose connection dropped.
RECONNECT_DELAYS_S = (0.05, 0.25, 1.0, 2.0)
#: Frames read from the store at a time, filling what a session wrote while disconnected.
GAP_FRAMES = 2000

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
        paths: HostPaths | None = None,
    ) -> None:
        self.manager = manager
        self.reader = reader
        self.writer = writer
        #: Where to connect again when the connection drops (None: never).
        self.paths = paths
        self.sessions: dict[str, LiveSession] = {}
        self._next_id = 0
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], OnReply | None]] = {}
        #: What the host sent for a session being adopted again, held until its gap is filled.
        self._held: dict[str, list[tuple[dict[str, Any], bytes]]] = {}
        #: Set while the connection is being made again; requests wait for it.
        self._reconnected: asyncio.Future[bool] | None = None
        self.closed = False
        self._closing_here = False
        self._reading = asyncio.ensure_future(self._read())
        manager.flushers.append(self.flush)

    async def usable(self) -> bool:
        """Whether requests can go through this connection: a connection being made again is
        waited for, and one that could not be (the host stopped) is not usable."""
        if self._reconnected is not None:
            await asyncio.shield(self._reconnected)
        return not self.closed

    # requests -----------------------------------------------------------------------------
    async def request(
        self, op: str, on_reply: OnReply | None = None, payload: bytes = b"", **fields: Any
    ) -> dict[str, Any]:
        """Sends ``op`` and waits for its answer; ``on_reply`` runs with it as soon as it is
        read, before any message after it (frames of a session it started)."""
        if self._reconnected is not None:
            await asyncio.shield(self._reconnected)
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
            self._fail_pending("the connection to the session host was lost")
            if not await self._reconnect():
                await self._lost()

    def _dispatch(self, header: dict[str, Any], payload: bytes) -> None:
        ev = header.get("ev")
        sid = header["sid"] if ev == "frame" else header["session"]["id"] if ev == "state" else None
        held = self._held.get(sid) if sid is not None else None
        if held is not None:
            held.append((header, payload))
        elif ev == "frame":
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

    def _fail_pending(self, why: str) -> None:
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(HostError(why))
        self._pending.clear()

    # a dropped connection -----------------------------------------------------------------
    async def _reconnect(self) -> bool:
        """Connects again to a host that still listens (a few tries, waiting longer each
        time) and adopts again the sessions shown here; False when no host listens (it died
        or stopped) or it cannot be reached."""
        if self.paths is None or self._closing_here:
            return False
        self.closed = True
        back: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._reconnected = back
        try:
            for delay in RECONNECT_DELAYS_S:
                await asyncio.sleep(delay)
                try:
                    conn = await open_connection(self.paths)
                except (HostError, OSError) as exc:
                    log.warning("cannot connect to the session host again: %s", exc)
                    continue
                if conn is None:
                    return False  # nothing listens: the host is gone
                log.warning("the connection to the session host dropped: connected again")
                self.reader, self.writer = conn
                self.closed = False
                self._reading = asyncio.ensure_future(self._read())
                back.set_result(True)
                for live in list(self.sessions.values()):
                    await self._adopt_again(live)
                return True
            return False
        finally:
            if self._reconnected is back:  # else dropped again meanwhile: a newer try runs
                self._reconnected = None
            if not back.done():
                back.set_result(False)

    async def _adopt_again(self, live: LiveSession) -> None:
        """Watches ``live`` again: what it wrote while disconnected comes from the store
        (the host flushed first), then what the host sent since, in order."""
        sid = live.id
        self._held[sid] = []
        live.controller = self
        ended: Session | None = None
        try:
            try:
                await self.request("attach", sid=sid)
            except HostError:
                if self.closed:
                    return  # dropped again: the next connection adopts it
                ended = await self._recorded_end(sid)  # it ended while disconnected
            while True:
                frames, _ = await self.manager.frames(sid, live.session.last_seq + 1, GAP_FRAMES)
                for frame in frames:
                    self.manager.relay(live, frame)
                if len(frames) < GAP_FRAMES:
                    break
        except Exception:
            log.exception("adopting %s again failed", sid)
        finally:
            held = self._held.pop(sid, [])
        for header, payload in held:
            self._dispatch(header, payload)
        if ended is not None and self.sessions.pop(sid, None) is not None:
            self.manager.ended_elsewhere(live, ended)

    async def _recorded_end(self, sid: str) -> Session:
        """How the store says ``sid`` ended (interrupted when it does not say)."""
        store = self.manager.store
        found = None
        if store is not None and store.opened:
            await self.flush()
            found = await asyncio.to_thread(store.get_session, sid)
        if found is not None and found.state is not State.RUNNING:
            return found
        return self._interrupted(self.sessions[sid].session)

    @staticmethod
    def _interrupted(gone: Session) -> Session:
        return Session(
            id=gone.id,
            kind=gone.kind,
            title=gone.title,
            state=State.INTERRUPTED,
            error="the session host stopped while the session was running",
        )

    async def _lost(self) -> None:
        """The host went away: what ran there can never finish now."""
        self.closed = True
        with contextlib.suppress(ValueError):
            self.manager.flushers.remove(self.flush)
        self._fail_pending("the session host stopped")
        lost, self.sessions = list(self.sessions.values()), {}
        for live in lost:
            self.manager.ended_elsewhere(live, self._interrupted(live.session))
        # The host marks nothing as it dies: the store marks its sessions once their owner,
        # the host's process, is seen gone (reaped).
        for _ in range(25 if lost else 0):
            await asyncio.sleep(0.2)
            with contextlib.suppress(Exception):
                if await self.manager.mark_interrupted():
                    break

    def close(self) -> None:
        self._closing_here = True
        self.writer.close()
