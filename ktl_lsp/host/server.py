"""``ktl-lsp host``: the process that owns the terminals of sessions that outlive the editor.

It opens the store with its own session manager (so it is the recorded owner of the sessions it
runs: if it dies, they are marked interrupted), starts the sessions its clients ask for, and
sends each client the frames of the sessions it watches. A client that stops reading is sent
nothing more for a while and is caught up from the store once it reads again, so a slow editor
never slows a session. It ends once it has had no client and no running session for
``idle_timeout`` seconds, or when asked (``ktl-lsp host --stop``, SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ktl_lsp import __version__
from ktl_lsp.aio import background
from ktl_lsp.errors import UserError
from ktl_lsp.host.forwards import HostForwards
from ktl_lsp.host.protocol import (
    HostError,
    HostPaths,
    frame_message,
    pack,
    read_message,
    session_to_wire,
    spec_of,
)
from ktl_lsp.sessions.bus import Item, StateChange
from ktl_lsp.sessions.manager import LiveSession, SessionManager
from ktl_lsp.sessions.model import Frame
from ktl_lsp.sessions.owner import current_owner
from ktl_lsp.sessions.redact import Redaction

log = logging.getLogger(__name__)

#: Bytes queued for a client before it is counted as not reading (then caught up from the store).
CLIENT_HIGH_WATER = 8 * 1024 * 1024
CATCH_UP_FRAMES = 256
#: How long ``stop`` waits for cancelled sessions to end before killing what is left.
STOP_GRACE_S = 12.0
#: How long a new host waits for its first client before its idle timeout counts.
START_GRACE_S = 10.0

#: Requests answered when something happens, not at once (each in a task of its own).
WAITING_OPS = frozenset({"forwards"})


class AlreadyRunning(Exception):
    """Another host holds the lock for this store."""


class Client:
    """One connection: the sessions it watches, and those it fell behind on."""

    def __init__(self, host: HostServer, writer: asyncio.StreamWriter) -> None:
        self.host = host
        self.writer = writer
        self.watching: set[str] = set()
        #: Session id -> first seq not sent (the client was not reading).
        self.behind: dict[str, int] = {}
        #: Final states of sessions that ended while behind, sent after their frames.
        self.held: dict[str, bytes] = {}
        self.catching_up = False

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    @property
    def congested(self) -> bool:
        return self.writer.transport.get_write_buffer_size() > CLIENT_HIGH_WATER

    def on_frame(self, frame: Frame) -> None:
        sid = frame.session_id
        if sid in self.behind:
            return
        if self.congested:
            log.info(
                "a client stopped reading at frame %d of %s: it is caught up later", frame.seq, sid
            )
            self.behind[sid] = frame.seq
            if not self.catching_up:
                self.catching_up = True
                background(self._catch_up(), name="ktl-host-catch-up")
            return
        self.send(frame_message(frame))

    def on_end(self, message: bytes, sid: str) -> None:
        if sid in self.behind:
            self.held[sid] = message
        else:
            self.send(message)
            self.watching.discard(sid)

    async def _catch_up(self) -> None:
        """Sends what the client missed from the store, a piece at a time as it reads, until
        it has every frame recorded; then its sessions are live again (no await between the
        check and the switch, so no frame falls between)."""
        manager = self.host.manager
        try:
            while self.behind and not self.writer.is_closing():
                await self.writer.drain()
                sid, from_seq = next(iter(self.behind.items()))
                try:
                    frames, _ = await manager.frames(sid, from_seq, CATCH_UP_FRAMES)
                except UserError:
                    frames = []
                for f in frames:
                    self.send(frame_message(f))
                live = manager.live.get(sid)
                last = live.session.last_seq if live is not None else 0
                next_seq = frames[-1].seq + 1 if frames else from_seq
                if not frames or next_seq > last:
                    del self.behind[sid]
                    held = self.held.pop(sid, None)
                    if held is not None:
                        self.send(held)
                        self.watching.discard(sid)
                else:
                    self.behind[sid] = next_seq
        except ConnectionError:
            pass
        finally:
            self.catching_up = False


class HostServer:
    def __init__(self, store: Path, idle_timeout: float, paths: HostPaths | None = None) -> None:
        self.store = store
        self.idle_timeout = idle_timeout
        self.paths = paths or HostPaths.of(store)
        self.clients: set[Client] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.manager: SessionManager
        self.forwards: HostForwards
        self._stop: asyncio.Event | None = None
        self._lock_fd: int | None = None

    # start and stop -----------------------------------------------------------------------
    def _take_lock(self) -> None:
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(str(self.paths.socket)) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Serves until idle or stopped. Raises AlreadyRunning when another host has the
        store, HostError when the socket's place is not ours."""
        self.paths.private_dir()
        self._take_lock()
        try:
            # Holding the lock, any socket here is a dead host's (one of another user is refused).
            if self.paths.check_socket():
                os.unlink(self.paths.socket)
            await self._serve(ready)
        finally:
            self._release_lock()

    async def _serve(self, ready: Callable[[], None] | None) -> None:
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.manager = SessionManager.open(self.store, loop=loop)
        self.forwards = HostForwards(self.manager)
        self.manager.listen(self._on_item)
        try:
            server = await asyncio.start_unix_server(self._connected, path=str(self.paths.socket))
        except OSError as exc:
            self.manager.close()
            raise HostError(f"cannot listen on {self.paths.socket}: {exc}") from exc
        os.chmod(self.paths.socket, 0o600)
        inode = os.stat(self.paths.socket).st_ino
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._signalled, sig)
        log.info("session host for %s on %s (pid %d)", self.store, self.paths.socket, os.getpid())
        if ready is not None:
            ready()
        idle = background(self._idle_watch(), name="ktl-host-idle")
        try:
            await self._stop.wait()
        finally:
            idle.cancel()
            server.close()
            with contextlib.suppress(OSError):
                if os.stat(self.paths.socket).st_ino == inode:
                    os.unlink(self.paths.socket)
            await self._end_sessions()
            for c in list(self.clients):
                c.writer.close()
            if self._handlers:  # each sees its connection end, and returns
                await asyncio.wait(self._handlers, timeout=5)
            self.manager.close()
            log.info("session host stopped")

    async def _end_sessions(self) -> None:
        running = [x for x in self.manager.live.values() if not x.done.done()]
        for live in running:
            self.manager.cancel(live.id)
        if running:
            await asyncio.wait([x.done for x in running], timeout=STOP_GRACE_S)
        await self.manager.flush()

    async def _idle_watch(self) -> None:
        idle_since: float | None = None
        loop = asyncio.get_running_loop()
        tick = max(0.05, min(1.0, self.idle_timeout / 4))
        # The one that started it connects first, however short the idle timeout.
        first_client_by = loop.time() + START_GRACE_S
        while True:
            await asyncio.sleep(tick)
            if self.clients or self.manager.running_count():
                idle_since = None
                first_client_by = 0.0
                continue
            if loop.time() < first_client_by:
                continue
            now = loop.time()
            if idle_since is None:
                idle_since = now
            if now - idle_since >= self.idle_timeout:
                log.info("no client and no running session for %gs", self.idle_timeout)
                self.stop()
                return

    def _signalled(self, sig: signal.Signals) -> None:
        log.info("stopping on %s", sig.name)
        self.stop()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    # frames to clients --------------------------------------------------------------------
    def _on_item(self, item: Item) -> None:
        if isinstance(item, Frame):
            for c in self.clients:
                if item.session_id in c.watching:
                    c.on_frame(item)
        elif isinstance(item, StateChange) and item.session.state.final:
            sid = item.session.id
            message = pack({"ev": "state", "session": session_to_wire(item.session)})
            for c in self.clients:
                if sid in c.watching:
                    c.on_end(message, sid)

    # requests -----------------------------------------------------------------------------
    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not _same_user(writer):
            log.warning("refused a connection from another user")
            writer.close()
            return
        client = Client(self, writer)
        self.clients.add(client)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            while True:
                message = await read_message(reader)
                if message is None:
                    break
                header, payload = message
                if header.get("op") in WAITING_OPS:
                    # Answered when ready; what the client sends meanwhile (a cancel) is not held up.
                    background(self._request(client, header, payload), name="ktl-host-wait")
                else:
                    await self._request(client, header, payload)
        except (HostError, ValueError) as exc:
            log.warning("dropped a client: %s", exc)
        finally:
            self.clients.discard(client)
            writer.close()

    async def _request(self, client: Client, header: dict[str, Any], payload: bytes) -> None:
        rid = header.get("id")
        try:
            result = await self._answer(client, header, payload)
        except UserError as exc:
            if rid is not None:
                client.send(pack({"id": rid, "error": str(exc)}))
            else:
                log.info("%s: %s", header.get("op"), exc)
            return
        except Exception as exc:
            log.exception("request %s failed", header.get("op"))
            if rid is not None:
                client.send(pack({"id": rid, "error": f"the session host failed: {exc}"}))
            return
        if rid is not None:
            client.send(pack({"id": rid, "ok": result}))

    async def _answer(
        self, client: Client, header: dict[str, Any], payload: bytes
    ) -> dict[str, Any]:
        m = self.manager
        op = header.get("op")
        sid = str(header.get("sid", ""))
        if op == "run":
            spec = spec_of(header["spec"])
            live = m.create_pending(spec)
            _redact(live, header.get("redact"))
            client.watching.add(live.id)
            m.launch(live, spec)
            return session_to_wire(live.session)
        if op == "portForward":
            live = await self.forwards.start(header)
            # No await since the start: its first output is still to come.
            _redact(live, header.get("redact"))
            client.watching.add(live.id)
            return session_to_wire(live.session)
        if op == "forwards":
            return {"forwards": await self.forwards.forwards(sid)}
        if op == "attach":
            running = m.live.get(sid)
            if running is None or running.done.done():
                raise HostError(f"session {sid} is not running in the session host")
            client.watching.add(sid)
            return session_to_wire(running.session)
        if op == "input":
            m.input(sid, payload.decode("utf-8", errors="replace"))
        elif op == "resize":
            m.resize(sid, int(header["cols"]), int(header["rows"]))
        elif op == "signal":
            m.signal(sid, str(header["signal"]))
        elif op == "cancel":
            m.cancel(sid)
        elif op == "flush":
            await m.flush()
        elif op == "status":
            return self.status()
        elif op == "stop":
            log.info("stopping: a client asked")
            asyncio.get_running_loop().call_soon(self.stop)
        elif op != "hello":
            raise HostError(f"unknown request {op!r}")
        return {}

    def status(self) -> dict[str, Any]:
        running = [x.session for x in self.manager.live.values() if not x.done.done()]
        return {
            "pid": os.getpid(),
            "owner": current_owner(),
            "version": __version__,
            "store": str(self.store),
            "socket": str(self.paths.socket),
            "clients": len(self.clients),
            "idleTimeoutS": self.idle_timeout,
            "sessions": [{"sessionId": s.id, "title": s.title, "kind": s.kind} for s in running],
        }


def _redact(live: LiveSession, redact: Any) -> None:
    """The language server's redaction settings for a session it started here."""
    if isinstance(redact, dict):
        rules = [(str(n), str(p)) for n, p in redact.get("patterns", [])]
        redaction = Redaction.build(bool(redact.get("enabled")), rules)
        live.redactor = redaction.redactor() if redaction is not None else None


def _same_user(writer: asyncio.StreamWriter) -> bool:
    """The peer runs as this user (the socket's mode says so too; this is belt and braces)."""
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return True
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return bool(uid == os.getuid())
