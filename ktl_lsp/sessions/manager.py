"""Starts sessions, routes their frames to the bus and the store, and answers questions about them.

Frames flow one way: runner -> ``LiveSession.emit`` -> store (lossless, batched) + bus (paced
subscribers). The store is the one subscriber allowed to slow a session down: when its queue
grows past ``HIGH_WATER`` the PTY is no longer read until the writer catches up, and the child
blocks on a full terminal exactly as it would in a real one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ktl_lsp.aio import background
from ktl_lsp.pty import PtySpec, SpawnError, spawn
from ktl_lsp.pty.runner import Pty
from ktl_lsp.sessions import ids, plain
from ktl_lsp.sessions.approvals import Approvals
from ktl_lsp.sessions.blocks import Block, MarkParser, block_text, parse_block_ref
from ktl_lsp.sessions.bus import Item, SessionBus, StateChange, Subscription
from ktl_lsp.sessions.compare import Comparison, compare, visible_lines
from ktl_lsp.sessions.errors import (
    SHOWN_CANDIDATES,
    AmbiguousSession,
    ImportedSession,
    RecordingOff,
    SessionNotRunning,
    UnknownBlock,
    UnknownSession,
)
from ktl_lsp.sessions.model import (
    Frame,
    FrameType,
    Session,
    SessionFilter,
    State,
    event_data,
    now_ns,
)
from ktl_lsp.sessions.plain import PlainPage
from ktl_lsp.sessions.provenance import Provenance, host_name, os_user
from ktl_lsp.sessions.redact import FLUSH_S, Redacted, Redaction
from ktl_lsp.sessions.retention import PruneResult, RetentionPolicy
from ktl_lsp.sessions.search import MAX_LIMIT, Hit, Query
from ktl_lsp.sessions.store import Store, StoreError
from ktl_lsp.sessions.timeline import SeekResult, Timeline, Timelines, find_start, find_text

if TYPE_CHECKING:  # bundles (zipfile, ISA-L) load when one is made, not at start-up
    from ktl_lsp.sessions.bundle import BundleInfo

T = TypeVar("T")
log = logging.getLogger(__name__)

HIGH_WATER = 32 * 1024 * 1024
#: Frames kept in memory per session while the store is not recording.
MEMORY_TAIL_BYTES = 8 * 1024 * 1024
#: Finished sessions kept in memory (for stores that are off, and fast answers).
RECENT_FINISHED = 200
CANCEL_TERM_AFTER_S = 3.0
CANCEL_KILL_AFTER_S = 10.0


#: The shortest id prefix that stands for a session (ids are 16 characters).
MIN_PREFIX = 4


def requester() -> str:
    return "@".join(p for p in (os_user(), host_name()) if p) or "ktl"


def shell_argv(command: str) -> list[str]:
    if sys.platform == "win32":  # pragma: no cover
        return [os.environ.get("COMSPEC", "cmd.exe"), "/c", command]
    return [os.environ.get("SHELL") or "/bin/sh", "-c", command]


@dataclass
class RunSpec:
    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] | None = None
    cols: int = 120
    rows: int = 30
    timeout_s: float | None = None
    title: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    input: str | None = None
    command: str | None = None
    kind: str = "pty"
    parent_id: str | None = None
    #: Opens a terminal that is not a local process (a Kubernetes exec); raises SpawnError.
    opener: Callable[[LiveSession], Awaitable[Pty]] | None = None
    #: Read shell integration marks from the output as command blocks (sessions/blocks.py).
    blocks: bool = False


@dataclass
class TaskOutcome:
    state: State = State.DONE
    exit_code: int | None = 0
    error: str | None = None
    #: Extra fields for the command's result (e.g. ``resources`` of an apply).
    extra: dict[str, Any] = field(default_factory=dict)


TaskWork = Callable[["LiveSession"], Awaitable[TaskOutcome]]


class Controller(Protocol):
    """Drives a session that another process runs and records (the session host, ktl_lsp/host):
    what is asked of it here is sent there, and its frames come back through ``relay``."""

    def input(self, session_id: str, data: str) -> None: ...
    def resize(self, session_id: str, cols: int, rows: int) -> None: ...
    def signal(self, session_id: str, name: str) -> None: ...
    def cancel(self, session_id: str) -> None: ...


class LiveSession:
    """A session of this process: its runner, sequence counter and end."""

    def __init__(self, manager: SessionManager, session: Session) -> None:
        self.manager = manager
        self.session = session
        self.pty: Pty | None = None
        self.done: asyncio.Future[Session] = asyncio.get_running_loop().create_future()
        self.tail: deque[Frame] = deque()
        self._tail_bytes = 0
        self.cancel_reason: str | None = None
        self.cancel_reason_text = "cancelled"
        self.user_signal = False
        self._timers: list[asyncio.TimerHandle] = []
        #: What the editor asked for before the process existed, applied once it does.
        self.pending: list[Callable[[Pty], None]] = []
        #: For sessions that are not a process: the task doing the work.
        self.task: asyncio.Task[None] | None = None
        self.result_extra: dict[str, Any] = {}
        self._paused = False
        #: Well-known secrets in the output are replaced before they become frames.
        self.redactor = manager.redaction.redactor() if manager.redaction is not None else None
        self._redact_timer: asyncio.TimerHandle | None = None
        #: Shell integration marks, read as command blocks (None: not a shell session).
        self.marks: MarkParser | None = None
        self.blocks: list[Block] = []
        #: Set for a session another process runs (see ``SessionManager.adopt``).
        self.controller: Controller | None = None

    @property
    def id(self) -> str:
        return self.session.id

    def emit(self, ftype: FrameType, data: bytes) -> Frame:
        s = self.session
        s.last_seq += 1
        frame = Frame(s.id, s.last_seq, now_ns(), ftype, data)
        store = self.manager.store
        if store is not None:
            store.append(frame)  # held by the store while it cannot write, if it fits
        if store is not None and store.recording:
            if store.pending_bytes > HIGH_WATER and not self._paused and self.pty is not None:
                self._paused = True
                self.pty.pause_reading()
                background(self._resume_when_flushed())
        else:
            self.tail.append(frame)
            self._tail_bytes += len(data)
            while self._tail_bytes > MEMORY_TAIL_BYTES and len(self.tail) > 1:
                self._tail_bytes -= len(self.tail.popleft().data)
        self.manager.bus.publish(frame)
        if self.marks is not None and ftype is FrameType.OUTPUT:
            for block in self.marks.feed(data, frame.seq, frame.ts_ns):
                self._record_block(block)
        return frame

    def _record_block(self, block: Block) -> None:
        if block.index == len(self.blocks):
            self.blocks.append(block)
        else:
            self.blocks[block.index] = block
        self.emit(FrameType.EVENT, event_data(block=block.record()))

    def close_block(self) -> None:
        """A block still running when the session ends ends with it (exit code unknown), so
        no block stays open for ever in the store, the editor or a replay."""
        if self.marks is None:
            return
        block = self.marks.close(self.session.last_seq, now_ns())
        if block is not None:
            self._record_block(block)

    async def _resume_when_flushed(self) -> None:
        store = self.manager.store
        if store is not None:
            await store.flush()
        self._paused = False
        if self.pty is not None and not self.done.done():
            self.pty.resume_reading()

    def write(self, text: str) -> None:
        """Output from work that is not a process (already terminal text: use \r\n)."""
        raw = text.encode("utf-8")
        self.session.bytes_out += len(raw)
        self._output(raw)

    def event(self, **fields: Any) -> None:
        self.emit(FrameType.EVENT, event_data(**fields))

    # PtySink
    def on_output(self, raw: bytes, text: str) -> None:
        self.session.bytes_out += len(raw)
        self._output(raw)

    # redaction (ktl_lsp/sessions/redact.py) -------------------------------------------------
    def _output(self, raw: bytes) -> None:
        if self.redactor is None:
            self.emit(FrameType.OUTPUT, raw)
            return
        self._emit_redacted(self.redactor.feed(raw))
        if self._redact_timer is not None:
            self._redact_timer.cancel()
            self._redact_timer = None
        if self.redactor.pending:
            loop = asyncio.get_running_loop()
            self._redact_timer = loop.call_later(FLUSH_S, self.flush_redactor)

    def flush_redactor(self) -> None:
        """Releases held-back output (quiet for a moment, or the session is ending)."""
        if self._redact_timer is not None:
            self._redact_timer.cancel()
            self._redact_timer = None
        if self.redactor is not None and self.redactor.pending:
            self._emit_redacted(self.redactor.flush())

    def _emit_redacted(self, out: Redacted, ftype: FrameType = FrameType.OUTPUT) -> None:
        if out.names:
            self.emit(FrameType.EVENT, event_data(redacted=out.names, bytes=out.bytes_removed))
        if out.data:
            self.emit(ftype, out.data)

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        self._timers.append(asyncio.get_running_loop().call_later(delay, fn))

    def clear_timers(self) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()


class SessionManager:
    def __init__(self, store: Store | None, on_notice: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.bus = SessionBus()
        self.live: dict[str, LiveSession] = {}
        self._recent: deque[str] = deque()
        self._on_notice = on_notice
        #: Why the store could not be opened (None when it is open or was never asked for);
        #: a store that could not be written for want of space still retries.
        self.store_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Secret patterns replaced in recorded output (None: off); set from the settings.
        self.redaction: Redaction | None = None  # off unless the settings turn it on
        #: What leaves the store is redacted with (the user's patterns too, even when the
        #: recording is not); None: the recording's rules, or the well-known ones.
        self.leaving: Redaction | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._poller: concurrent.futures.ThreadPoolExecutor | None = None
        self._timelines = Timelines()
        #: Questions its sessions put to a person (protected contexts, plans that pause).
        self.approvals = Approvals(self)
        #: Who started each session and from where (sessions/provenance.py).
        self.provenance = Provenance()
        #: What else must be flushed before the store is read: the session host, whose
        #: sessions this manager shows but does not record.
        self.flushers: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    def open(
        cls,
        path: Any,
        on_notice: Callable[[str], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> SessionManager:
        """Opens the store at ``path``; without one, sessions still run and are kept in memory.

        ``loop``: the loop the manager serves, when opened from another thread (``on_notice``
        must then be safe to call from that thread)."""
        manager = cls(None, on_notice)
        store = Store(path, on_failure=manager._from_store, on_resume=manager._from_store)
        manager._loop = loop
        if loop is None:
            with contextlib.suppress(RuntimeError):
                manager._loop = asyncio.get_running_loop()
        try:
            store.open()
            if store.notice:
                manager._notice(f"ktl: {store.notice}")
            n = store.mark_interrupted()
            if n:
                log.info("marked %d sessions interrupted", n)
            manager.store = store
            # A full disk: recording is off (the store said so) until the store can write.
            manager.store_error = store.open_error
        except StoreError as exc:
            manager.store_error = str(exc)
            manager._notice(f"ktl: recording is off: {exc}")
        return manager

    def _from_store(self, message: str) -> None:
        """Recording turned off or back on. From the store's writer thread, this hops onto
        the loop before telling anyone."""
        loop = self._loop
        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        if loop is not None and loop.is_running() and not here:
            loop.call_soon_threadsafe(self._notice, f"ktl: {message}")
        else:
            self._notice(f"ktl: {message}")

    def _notice(self, message: str) -> None:
        if self._on_notice is None:
            log.warning("%s", message)
        else:
            self._on_notice(message)  # which reports it: logging it too said it twice

    @property
    def path(self) -> Path | None:
        """The store's file, when there is a store."""
        return self.store.path if self.store is not None else None

    @property
    def recording(self) -> bool:
        return self.store is not None and self.store.recording

    def close(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
        if self._poller is not None:
            self._poller.shutdown(wait=False, cancel_futures=True)
        self.provenance.close()
        for live in list(self.live.values()):
            if live.pty is not None and not live.pty.exited:
                live.pty.send_signal("KILL")
        if self.store is not None:
            self.store.close()

    # starting -----------------------------------------------------------------------------
    def create(self, spec: RunSpec) -> LiveSession:
        self._loop = asyncio.get_running_loop()
        meta: dict[str, Any] = {
            "command": spec.command if spec.command is not None else " ".join(spec.argv),
            "args": list(spec.argv[1:]) if spec.command is None else [],
            "requester": requester(),
            "cwd": os.path.abspath(os.path.expanduser(spec.cwd)) if spec.cwd else os.getcwd(),
        }
        meta.update(spec.meta)
        title = spec.title or (spec.command if spec.command is not None else " ".join(spec.argv))
        session = Session(
            id=ids.new_id(),
            kind=spec.kind,
            title=title[:200],
            meta=meta,
            tags=dict(spec.tags),
            parent_id=spec.parent_id,
        )
        self.provenance.stamp(session, self.save)
        live = LiveSession(self, session)
        if spec.blocks:
            live.marks = MarkParser()
        self.live[session.id] = live
        if self.store is not None:
            self.store.save_session(session)
        live.emit(FrameType.EVENT, event_data(state="running"))
        self.bus.publish(StateChange(session))
        return live

    def start(self, spec: RunSpec) -> LiveSession:
        """Creates the session and starts its process; a failed start ends the session as error."""
        live = self.create_pending(spec)
        self.launch(live, spec)
        return live

    def create_pending(self, spec: RunSpec) -> LiveSession:
        """The session exists (and is recorded) before its process: watchers attach in between."""
        live = self.create(spec)
        live.emit(FrameType.RESIZE, event_data(cols=spec.cols, rows=spec.rows))
        return live

    def launch(self, live: LiveSession, spec: RunSpec) -> None:
        background(self._run(live, spec), name=f"session-{live.id}")

    async def _run(self, live: LiveSession, spec: RunSpec) -> None:
        try:
            if spec.opener is not None:
                pty = await spec.opener(live)
            else:
                pty = await spawn(
                    PtySpec(spec.argv, cwd=spec.cwd, env=spec.env, cols=spec.cols, rows=spec.rows),
                    live,
                )
        except SpawnError as exc:
            self.finish(live, State.ERROR, error=str(exc))
            return
        except Exception as exc:  # an unexpected failure still ends the session truthfully
            log.exception("spawn failed")
            self.finish(live, State.ERROR, error=f"could not start: {exc}")
            return
        if live.done.done():  # cancelled while the process was starting
            pty.send_signal("KILL")
            await pty.wait()
            return
        live.pty = pty
        for op in live.pending:
            op(pty)
        live.pending.clear()
        if spec.timeout_s:
            timeout = spec.timeout_s
            live.later(timeout, lambda: self._timeout(live, timeout))
        if spec.input:
            self.input(live.id, spec.input)
        await self._supervise(live)

    async def _supervise(self, live: LiveSession) -> None:
        assert live.pty is not None
        info = await live.pty.wait()
        if live.cancel_reason == "timeout":
            state, error = State.ERROR, live.cancel_reason_text
        elif live.cancel_reason is not None:
            state, error = State.CANCELLED, "cancelled"
        elif info.exit_code == 0:
            state, error = State.DONE, None
        elif live.user_signal and (info.signal or info.exit_code in (130, 143, 137, 129)):
            state, error = State.CANCELLED, None
        elif info.error:
            state, error = State.ERROR, info.error
        else:
            state, error = State.ERROR, f"exit {info.exit_code}"
            if info.signal:
                error = f"killed by signal {info.signal}"
        self.finish(live, state, exit_code=info.exit_code, signal=info.signal, error=error)

    def finish(
        self,
        live: LiveSession,
        state: State,
        exit_code: int | None = None,
        signal: str | None = None,
        error: str | None = None,
    ) -> None:
        if live.done.done():
            return
        live.flush_redactor()
        live.close_block()
        live.clear_timers()
        s = live.session
        if live.result_extra and s.kind != "plan":  # a plan's record is its meta.plan
            # What the work found (an apply's resources and diffs, verify's findings) stays
            # with the recording: bundles and replays carry it, not just the command's answer.
            live.event(result=live.result_extra)
        s.state, s.exit_code, s.signal, s.error = state, exit_code, signal, error
        fields: dict[str, Any] = {"state": str(state)}
        if exit_code is not None:
            fields["exitCode"] = exit_code
        if signal:
            fields["signal"] = signal
        if error:
            fields["error"] = error
        live.emit(FrameType.EVENT, event_data(**fields))
        s.ended_ns = now_ns()
        if self.store is not None:
            self.store.save_session(s)
        self._ended(live)

    def _ended(self, live: LiveSession) -> None:
        s = live.session
        self.bus.publish(StateChange(s))
        live.done.set_result(s)
        self._recent.append(s.id)
        while len(self._recent) > RECENT_FINISHED:
            old = self._recent.popleft()
            gone = self.live.get(old)
            if gone is not None and gone.done.done():
                del self.live[old]

    # sessions another process runs (the session host) -----------------------------------
    def adopt(self, session: Session, controller: Controller) -> LiveSession:
        """Shows here a session that another process runs and records: its frames arrive
        through :meth:`relay`, its end through :meth:`ended_elsewhere`, and input, resizes,
        signals and cancels go to ``controller``. The store is not written for it here."""
        live = self.live.get(session.id)
        if live is not None and not live.done.done():
            return live
        self._loop = asyncio.get_running_loop()
        live = LiveSession(self, session)
        live.controller = controller
        self.live[session.id] = live
        self.bus.publish(StateChange(session))
        return live

    def relay(self, live: LiveSession, frame: Frame) -> None:
        """A frame of an adopted session, already recorded by the process that runs it."""
        s = live.session
        if frame.seq <= s.last_seq:
            return
        s.last_seq = frame.seq
        if frame.type is FrameType.OUTPUT:
            s.bytes_out += len(frame.data)
        self.bus.publish(frame)

    def ended_elsewhere(self, live: LiveSession, ended: Session) -> None:
        """An adopted session ended (or its process was lost: ``ended`` says interrupted)."""
        if live.done.done():
            return
        s = live.session
        s.state, s.exit_code, s.signal, s.error = (
            ended.state,
            ended.exit_code,
            ended.signal,
            ended.error,
        )
        s.ended_ns = ended.ended_ns or now_ns()
        s.last_seq = max(s.last_seq, ended.last_seq)
        self._ended(live)

    async def mark_interrupted(self) -> int:
        """Sessions whose recording process died are marked interrupted in the store."""
        if self.store is None or not self.store.opened:
            return 0
        return await asyncio.to_thread(self.store.mark_interrupted)

    # control ------------------------------------------------------------------------------
    def get_live(self, session_id: str) -> LiveSession:
        live = self.live.get(session_id)
        if live is None:
            raise UnknownSession(session_id)
        return live

    def _here(self, session_id: str, action: str) -> LiveSession:
        """A session of this process by id, or by a unique prefix among them. ``action`` (what
        the caller wants to do) words the refusal of an imported session."""
        live = self.live.get(session_id)
        if live is not None:
            return live
        if len(session_id) >= MIN_PREFIX:
            found = [x for sid, x in self.live.items() if sid.startswith(session_id)]
            if len(found) == 1:
                return found[0]
            if found:
                raise AmbiguousSession(session_id, sorted(x.id for x in found))
        self._refuse_imported_sync(session_id, action)
        raise UnknownSession(session_id)

    def _running(self, session_id: str, action: str) -> LiveSession:
        live = self._here(session_id, action)
        if live.done.done():
            raise SessionNotRunning(f"session {session_id} is not running")
        return live

    def _refuse_imported_sync(self, session_id: str, action: str) -> None:
        # Only on the way to "unknown session": one primary-key read, never on the hot path.
        if self.store is None or not self.store.opened or not ids.is_valid(session_id):
            return
        found = self.store.get_session(session_id)
        if found is None and len(session_id) >= MIN_PREFIX:
            near = self.store.ids_from(session_id, 2)
            found = self.store.get_session(near[0]) if len(near) == 1 else None
        if found is not None:
            refuse_imported(found, action)

    async def refuse_imported(self, session_id: str, action: str) -> Session:
        """The session, unless it was imported from a bundle (``ImportedSession`` says what it
        cannot do): the check of commands that would drive or repeat a session."""
        session = await self.get(session_id)
        refuse_imported(session, action)
        return session

    @staticmethod
    def _apply(live: LiveSession, op: Callable[[Pty], None]) -> None:
        if live.pty is None:
            live.pending.append(op)
        else:
            op(live.pty)

    def input(self, session_id: str, data: str) -> None:
        live = self._running(session_id, "take input")
        if live.controller is not None:
            live.controller.input(live.id, data)
            return
        raw = data.encode("utf-8")

        def record(echoed: bool) -> None:
            if echoed:
                if live.redactor is not None:
                    live._emit_redacted(live.redactor.scan(raw), FrameType.INPUT)
                else:
                    live.emit(FrameType.INPUT, raw)
            else:
                # A password prompt: keep the fact that something was typed, never the bytes.
                live.emit(FrameType.EVENT, event_data(input="hidden", bytes=len(raw)))

        if live.pty is None:
            record(True)
        else:
            # A remote terminal may only know later whether it echoed (ExecTerminal).
            live.pty.judge_input(raw, record)
        self._apply(live, lambda pty: pty.write(raw))

    def resize(self, session_id: str, cols: int, rows: int) -> None:
        live = self._running(session_id, "be resized")
        if live.controller is not None:
            live.controller.resize(live.id, cols, rows)
            return
        live.emit(FrameType.RESIZE, event_data(cols=cols, rows=rows))
        self._apply(live, lambda pty: pty.resize(cols, rows))

    def signal(self, session_id: str, name: str) -> None:
        live = self._running(session_id, "be sent a signal")
        if live.controller is not None:
            live.controller.signal(live.id, name)
            return
        live.emit(FrameType.EVENT, event_data(signal=name))
        if name == "EOF":
            self._apply(live, lambda pty: pty.send_eof())
            return
        live.user_signal = True
        self._apply(live, lambda pty: pty.send_signal(name))

    def cancel(self, session_id: str, reason: str = "cancelled") -> LiveSession:
        """INT now, TERM after 3 s, KILL after 10 s, each to the whole process group."""
        live = self._here(session_id, "be cancelled")
        if live.done.done() or live.cancel_reason is not None:
            return live
        live.cancel_reason = reason
        if live.controller is not None:
            live.controller.cancel(live.id)
            return live
        if live.task is not None:
            # Work that is not a process (a Kubernetes call, a plan): cancel its task; the
            # task decides how to wind down and ends the session itself.
            live.emit(FrameType.EVENT, event_data(cancel=reason))
            live.task.cancel()
            return live
        if live.pty is None:
            # Still starting: it ends now; the process is killed as soon as it exists.
            self.finish(live, State.CANCELLED, error="cancelled")
            return live
        live.emit(FrameType.EVENT, event_data(cancel=reason))
        pty = live.pty

        def send(name: str) -> None:
            if not live.done.done() and not pty.exited:
                live.emit(FrameType.EVENT, event_data(signal=name))
                pty.send_signal(name)

        send("INT")
        live.later(CANCEL_TERM_AFTER_S, lambda: send("TERM"))
        live.later(CANCEL_KILL_AFTER_S, lambda: send("KILL"))
        return live

    def start_task(self, spec: RunSpec, work: TaskWork) -> LiveSession:
        """A session whose work is a coroutine rather than a process.

        ``work(live)`` writes output with ``live.write`` and returns a ``TaskOutcome``; raising
        ends the session as error with the exception's message, and cancellation (the editor's
        cancel, a timeout) ends it as cancelled unless ``work`` decides otherwise.
        """
        live = self.create(spec)
        live.task = background(self._run_task(live, spec, work), name=f"session-{live.id}")
        live.task.add_done_callback(lambda _: self._task_ended(live))
        return live

    def _task_ended(self, live: LiveSession) -> None:
        # Cancelled before its first step, the coroutine never ran: end the session here.
        if not live.done.done():
            self._cancelled(live)

    def _cancelled(self, live: LiveSession) -> None:
        if live.cancel_reason == "timeout":
            self.finish(live, State.ERROR, exit_code=1, error=live.cancel_reason_text)
        else:
            self.finish(live, State.CANCELLED, exit_code=130, error="cancelled")

    async def _run_task(self, live: LiveSession, spec: RunSpec, work: TaskWork) -> None:
        if spec.timeout_s:
            timeout = spec.timeout_s
            live.later(timeout, lambda: self._timeout(live, timeout))
        try:
            outcome = await work(live)
        except asyncio.CancelledError:
            self._cancelled(live)
            return
        except Exception as exc:
            log.exception("session %s failed", live.id)
            live.write(f"\r\nerror: {exc}\r\n")
            self.finish(live, State.ERROR, exit_code=1, error=str(exc) or type(exc).__name__)
            return
        if outcome.extra:
            live.result_extra.update(outcome.extra)
        self.finish(live, outcome.state, exit_code=outcome.exit_code, error=outcome.error)

    def _timeout(self, live: LiveSession, seconds: float) -> None:
        live.cancel_reason_text = f"timed out after {seconds:g}s"
        self.cancel(live.id, reason="timeout")

    async def wait(self, session_id: str, timeout_s: float | None = None) -> Session:
        live = self.live.get(session_id)
        if live is None:
            found = await self.get(session_id)
            return found
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(live.done), timeout_s)
        return live.session

    # queries ------------------------------------------------------------------------------
    async def get(self, session_id: str) -> Session:
        live = self.live.get(session_id)
        if live is not None:
            return live.session
        if self.store is not None and self.store.opened:
            found = await asyncio.to_thread(self.store.get_session, session_id)
            if found is not None:
                return found
        raise UnknownSession(session_id)

    async def find(self, text: str) -> Session:
        """The session ``text`` names: its id (one lookup, the usual case), else a unique
        prefix of one (see :meth:`resolve_id`)."""
        try:
            return await self.get(text)
        except UnknownSession:
            return await self.get(await self.resolve_id(text))

    async def resolve_id(self, text: str) -> str:
        """The session id ``text`` stands for: the id itself, else the one id that starts with
        it (at least MIN_PREFIX characters). Raises AmbiguousSession (listing candidates) or
        UnknownSession."""
        if text in self.live:
            return text
        if not ids.is_valid(text):
            raise UnknownSession(text)
        found: list[str] = []
        if self.store is not None and self.store.opened:
            found = await asyncio.to_thread(self.store.ids_from, text, SHOWN_CANDIDATES + 1)
        if text in found:
            return text
        if len(text) < MIN_PREFIX:
            raise UnknownSession(text, f"a prefix needs at least {MIN_PREFIX} characters")
        candidates = sorted({*found, *(sid for sid in self.live if sid.startswith(text))})
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise AmbiguousSession(text, candidates)
        raise UnknownSession(text)

    async def list_sessions(self, flt: SessionFilter) -> list[Session]:
        by_id: dict[str, Session] = {}
        if self.recording and self.store is not None:
            # The store is the truth for finished sessions (retention may have removed some).
            await self.flush()
            for s in await asyncio.to_thread(self.store.list_sessions, flt):
                by_id[s.id] = s
            live = [x for x in self.live.values() if not x.done.done()]
        else:
            live = list(self.live.values())
        for x in live:
            if _matches(x.session, flt):
                by_id[x.id] = x.session
        out = sorted(by_id.values(), key=lambda s: (s.created_ns, s.id), reverse=True)
        return out[: flt.limit]

    async def frames(
        self, session_id: str, from_seq: int = 1, limit: int | None = None
    ) -> tuple[list[Frame], int]:
        session = await self.get(session_id)
        live = self.live.get(session_id)
        if self.recording and self.store is not None:
            await self.flush()
            frames = await asyncio.to_thread(self.store.frames, session_id, from_seq, limit)
            if frames or live is None or not live.tail:
                # A session the host records may be further on there than its frames here.
                last = max(session.last_seq, frames[-1].seq if frames else 0)
                return frames, last
        if live is not None:
            frames = [f for f in live.tail if f.seq >= from_seq]
            if limit is not None:
                frames = frames[:limit]
            return frames, session.last_seq
        return [], session.last_seq

    # keeping and letting go ---------------------------------------------------------------
    async def set_pinned(self, session_id: str, pinned: bool) -> Session:
        session = await self.get(session_id)
        session.pinned = pinned
        live = self.live.get(session_id)
        if live is not None:
            live.session.pinned = pinned
        if self.store is not None and self.store.accepting:
            await asyncio.to_thread(self.store.set_pinned, session_id, pinned)
        return session

    async def delete(self, session_id: str) -> None:
        session = await self.get(session_id)
        if session.state is State.RUNNING:
            raise SessionNotRunning(
                f"session {session_id} is running; cancel it before deleting it"
            )
        self.live.pop(session_id, None)
        if self.store is not None and self.store.accepting:
            await asyncio.to_thread(self.store.delete, [session_id])

    async def prune(self, policy: RetentionPolicy) -> PruneResult:
        if not self.recording or self.store is None:
            return PruneResult()
        result = await asyncio.to_thread(self.store.prune, policy)
        for sid in [sid for sid, x in self.live.items() if x.done.done()]:
            del self.live[sid]  # finished ones are in the store, which now decides
        if result.deleted_sessions or result.trimmed_frames:
            log.info("pruned %s", result)
        return result

    def keep_pruning(self, policy: RetentionPolicy) -> None:
        """Prunes now and then every ``interval_s`` while the server runs."""
        if self._pruner is not None:
            self._pruner.cancel()
        if policy.unlimited or policy.interval_s <= 0:
            self._pruner = None
            return
        self._pruner = background(self._prune_loop(policy), name="retention")

    async def _prune_loop(self, policy: RetentionPolicy) -> None:
        await asyncio.sleep(min(30.0, policy.interval_s))
        while True:
            try:
                await self.prune(policy)
            except Exception:
                log.exception("pruning failed")
            await asyncio.sleep(policy.interval_s)

    async def output_lines(self, session_id: str) -> list[str]:
        frames, _ = await self.frames(session_id)
        return visible_lines(f.text() for f in frames if f.type is FrameType.OUTPUT)

    async def compare(self, a: str, b: str) -> Comparison:
        """Two runs side by side (exit codes, durations, normalised output); either may be a
        command block, ``SESSION#blockN`` (or ``SESSION#N``)."""
        sa, la = await self._compared(a)
        sb, lb = await self._compared(b)
        return await asyncio.to_thread(compare, sa, la, sb, lb)

    async def _compared(self, ref: str) -> tuple[Session, list[str]]:
        sid, sep, rest = ref.partition("#")
        session = await self.find(sid)
        if not sep:
            return session, await self.output_lines(session.id)
        block = await self.block(session.id, parse_block_ref(ref, rest))
        text = await self.block_output(session.id, block.index)
        state = (
            State.RUNNING
            if not block.ended
            else (State.DONE if block.exit_code == 0 else State.ERROR)
        )
        as_session = Session(
            id=f"{session.id}#block{block.index}",
            kind=session.kind,
            title=block.command or session.title,
            state=state,
            created_ns=block.started_ns,
            ended_ns=block.ended_ns,
            exit_code=block.exit_code,
            meta={"command": block.command, "cwd": block.cwd},
        )
        return as_session, visible_lines([text])

    # command blocks (sessions/blocks.py) --------------------------------------------------
    async def blocks(self, session_id: str) -> list[Block]:
        """A session's command blocks in order (a running one last, without an end)."""
        session = await self.get(session_id)
        live = self.live.get(session.id)
        if live is not None and live.marks is not None:
            return list(live.blocks)
        if self.store is None or not self.store.opened:
            return []
        await self.flush()
        store = self.store
        return await asyncio.to_thread(store.blocks, session.id)

    async def block(self, session_id: str, index: int) -> Block:
        for block in await self.blocks(session_id):
            if block.index == index:
                return block
        raise UnknownBlock(f"session {session_id} has no command block {index}")

    async def block_output(self, session_id: str, index: int) -> str:
        """What a block's command printed, as plain text (its marks and prompt left out)."""
        block = await self.block(session_id, index)
        frames, _ = await self.frames(session_id, block.from_seq)
        last = block.to_seq if block.to_seq is not None else None
        raw = b"".join(
            f.data for f in frames if f.type is FrameType.OUTPUT and (last is None or f.seq <= last)
        )
        return block_text(raw)

    # search across sessions (sessions/search.py) ------------------------------------------
    async def search(
        self,
        text: str,
        limit: int = 50,
        state: str | None = None,
        kind: str | None = None,
        since_ns: int | None = None,
        *,
        session_id: str | None = None,
        not_kind: str | None = None,
    ) -> list[Hit]:
        """Lines of every recorded session's output that match ``text``, newest first (of one
        session, leaving a kind out, when asked)."""
        store = self._readable_store()
        if store.indexer is None:
            raise RecordingOff("search is off: output is not indexed (KTL_LSP_SEARCH_INDEX=0)")
        query = Query.parse(text)
        await store.indexed()
        limit = max(0, min(limit, MAX_LIMIT))
        return await asyncio.to_thread(
            functools.partial(
                store.search,
                query,
                limit,
                state,
                kind,
                since_ns,
                session_id=session_id,
                not_kind=not_kind,
            )
        )

    async def update_meta(self, session_id: str, **fields: Any) -> Session:
        """Adds ``fields`` to a session's meta and records it (a forward's URLs, say)."""
        session = await self.get(session_id)
        session.meta.update(fields)
        self.save(session)
        return session

    def save(self, session: Session) -> None:
        """Records a live session's fields as they are now (a crash keeps them). Not one that
        another process records: the row names its owner, which must stay that process."""
        adopted = self.live.get(session.id)
        if adopted is not None and adopted.controller is not None:
            return
        if self.store is not None:
            self.store.save_session(session)  # queued for the writer: never blocks

    async def export_pieces(
        self, session_id: str, fmt: str, from_seq: int = 1, reveal: bool = False
    ) -> tuple[Session, Iterator[bytes]]:
        """A session (or ``ID#blockN``, one command block) and its export as byte pieces, read
        lazily (iterate them in a thread); secrets redacted unless ``reveal``."""
        from ktl_lsp.sessions.export import iter_export
        from ktl_lsp.sessions.export.ndjson import iter_ndjson

        session, block = await self._export_target(session_id)
        store = self._readable_store()
        await self.flush()
        redaction = self.outgoing_redaction(reveal)
        if fmt == "ndjson" and block is None:
            from ktl_lsp.sessions.export._common import scrubbed_session

            redactor = redaction.redactor() if redaction is not None else None
            session, _ = scrubbed_session(session, redactor)
            return session, iter(iter_ndjson(store, session, from_seq=from_seq, redactor=redactor))
        pieces = iter_export(store, session.id, fmt, redaction=redaction, block=block)
        return session, iter(pieces)

    async def _export_target(self, ref: str) -> tuple[Session, Block | None]:
        """The session ``ref`` names, and the command block when it is ``ID#blockN``."""
        sid, sep, rest = ref.partition("#")
        session = await self.get(sid)
        if not sep:
            return session, None
        return session, await self.block(session.id, parse_block_ref(ref, rest))

    def outgoing_redaction(self, reveal: bool = False) -> Redaction | None:
        """What leaves the store is redacted by default (the well-known rules and the
        configured patterns), whatever recording does; None only when ``reveal`` is asked."""
        return None if reveal else (self.leaving or self.redaction or Redaction.default())

    def subscribe(self, session_id: str, maxsize: int) -> Subscription:
        """A queue of what a session running here emits from now on."""
        return self.bus.subscribe(session_id, maxsize=maxsize)

    async def export(
        self,
        session_id: str,
        fmt: str,
        path: Path | None = None,
        compat: bool = False,
        reveal: bool = False,
    ) -> Path:
        """Writes a session to ``path`` (a file or a directory; default ``exports/`` beside the
        store) in ``fmt``: ndjson, asciicast or html. Raises ``ExportError`` saying why not."""
        from ktl_lsp.sessions.export import default_filename, export_to_path, exports_dir

        session, block = await self._export_target(session_id)
        if self.store is None or not self.recording:
            raise RecordingOff("recording is off: there is no session store to export from")
        await self.flush()
        target = path
        if target is None:
            ref = session.id if block is None else f"{session.id}#block{block.index}"
            target = exports_dir(self.store) / default_filename(ref, fmt)
        return await asyncio.to_thread(
            functools.partial(
                export_to_path,
                compat=compat,
                redaction=self.outgoing_redaction(reveal),
                block=block,
            ),
            self.store,
            session.id,
            fmt,
            target,
        )

    async def bundle(
        self, session_id: str, path: Path | None = None, exit_code: int | None = None
    ) -> BundleInfo:
        """Writes the session and its children as a ``.ktlbundle`` (default: ``exports/``
        beside the store), secrets redacted (``sessions/bundle.py``)."""
        from ktl_lsp.sessions.bundle import EXTENSION, write_bundle
        from ktl_lsp.sessions.export import exports_dir

        session = await self.get(session_id)
        store = self._readable_store()
        await self.flush()
        target = path or exports_dir(store) / f"{session.id}{EXTENSION}"
        return await asyncio.to_thread(
            write_bundle, store, session.id, target, self.outgoing_redaction(), exit_code
        )

    async def import_bundle(self, path: Path) -> list[str]:
        """Loads a bundle's sessions into the store, marked imported; their ids, root first.
        A tampered, corrupt or newer bundle is refused (``BundleError`` names why)."""
        from ktl_lsp.sessions.bundle import read_bundle, store_bundle

        store = self._readable_store()
        loaded = await asyncio.to_thread(read_bundle, path)
        await self.flush()
        return await asyncio.to_thread(store_bundle, store, loaded, path.name)

    # replay: timelines, seeking and searching the recorded output -------------------------
    def _readable_store(self) -> Store:
        if self.store is None or not self.recording:
            raise RecordingOff("the session store is not available")
        return self.store

    async def timeline(self, session_id: str, idle_ms: float) -> Timeline:
        """A session's compact timeline (cached, extended as it grows)."""
        session = await self.get(session_id)
        return await self._timelines.get(self._readable_store(), session, idle_ms)

    async def find_start(self, tl: Timeline, seq: int, rows: int, budget: int) -> SeekResult:
        """Where to start replaying so the screen at ``seq`` is right (``sessions/timeline``)."""
        store = self._readable_store()
        return await asyncio.to_thread(
            lambda: find_start(store.reader(), tl.session_id, seq, rows, budget)
        )

    async def search_output(
        self, tl: Timeline, query: str, limit: int, redaction: Redaction | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Matches of ``query`` in the output with escape codes removed (and if there are more);
        in the redacted output with ``redaction``."""
        store = self._readable_store()
        await self.flush()
        return await asyncio.to_thread(
            lambda: find_text(store.reader(), tl, query, limit, redaction)
        )

    async def plain_output(
        self,
        session_id: str,
        *,
        from_seq: int | None = None,
        offset: int = 0,
        tail_lines: int | None = None,
        max_bytes: int,
    ) -> PlainPage:
        """A page of a session's output as redacted plain text (``sessions/plain``): forward
        from ``from_seq``, or its last ``tail_lines`` lines; never more than ``max_bytes``."""
        session = await self.get(session_id)
        if self.store is None or not self.recording:
            live = self.live.get(session.id)
            raw = b"".join(
                f.data
                for f in (live.tail if live else ())
                if f.type is FrameType.OUTPUT and f.seq >= (from_seq or 1)
            )
            text, names = plain.clean(raw)
            capped, cut = plain.cap_tail(text, max_bytes)
            return plain.PlainPage(capped, 0, 0, None, cut, names)
        store = self.store
        await self.flush()
        if tail_lines is not None:
            return await asyncio.to_thread(
                lambda: plain.read_tail(store.reader(), session.id, tail_lines, max_bytes)
            )
        return await asyncio.to_thread(
            lambda: plain.read_forward(store.reader(), session.id, from_seq or 1, max_bytes, offset)
        )

    async def flush(self, provenance: bool = True) -> None:
        """Waits until every frame emitted so far is in the store (before reading it back),
        and, unless ``provenance`` is False, the sessions' git part with it."""
        if provenance:
            await self.provenance.settle()
        if self.store is not None:
            await self.store.flush()
        for flush in list(self.flushers):
            await flush()

    # answers to questions of sessions running in other processes (sessions/approvals.py) ----
    async def _polled(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs a periodic read of the store (other processes' questions and sessions) in one
        thread of its own: each thread that reads holds its own SQLite connection, and polls
        spread over the shared pool would open one in each of its threads."""
        if self._poller is None:
            self._poller = concurrent.futures.ThreadPoolExecutor(1, "ktl-store-poll")
        return await asyncio.get_running_loop().run_in_executor(self._poller, fn, *args)

    async def post_answer(self, session_id: str, n: int, choice: str | None, who: str) -> bool:
        """Posts an answer for the process that asked; False when another was posted first."""
        return await asyncio.to_thread(
            self._readable_store().post_answer, session_id, n, choice, who
        )

    async def posted_answers(
        self, keys: list[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[str | None, str]]:
        if not keys or self.store is None or not self.recording:
            return {}
        return await self._polled(self.store.posted_answers, keys)

    async def fingerprint(self, not_kind: str) -> tuple[int, int, tuple[str, ...]] | None:
        """Changes when a session of another process on the store starts, ends or goes (this
        process's own are heard on its bus); None without a store."""
        if self.store is None or not self.recording:
            return None
        return await self._polled(self.store.fingerprint, not_kind)

    async def waiting_elsewhere(self) -> list[Session]:
        """Running sessions of other processes on this store that wait for an answer."""
        if self.store is None or not self.recording:
            return []
        running = await self._polled(
            self.store.list_sessions, SessionFilter(state=str(State.RUNNING), limit=1000)
        )
        # This process's own sessions are known better here than in what the writer has saved.
        return [s for s in running if s.meta.get("waiting") and s.id not in self.live]

    def listen(self, fn: Callable[[Item], None]) -> Callable[[], None]:
        """Calls ``fn`` inline with every frame and state change (it must be cheap); returns
        what stops it."""
        return self.bus.listen(fn)

    def is_running_here(self, session_id: str) -> bool:
        """The session runs in this process (not in another server on the same store)."""
        live = self.live.get(session_id)
        return live is not None and not live.done.done()

    def readers_opened(self) -> int:
        """The store's reader connections (each thread that read the store holds one)."""
        return self.store.readers_opened if self.store is not None else 0

    def running_count(self) -> int:
        return sum(1 for live in self.live.values() if not live.done.done())


def refuse_imported(session: Session, action: str) -> None:
    imported = session.meta.get("imported")
    if imported:
        source = imported.get("from") if isinstance(imported, dict) else None
        raise ImportedSession(session.id, str(source) if source else None, action)


def _matches(s: Session, flt: SessionFilter) -> bool:
    if flt.state and str(s.state) != flt.state:
        return False
    if flt.kind and s.kind != flt.kind:
        return False
    if flt.not_kind and s.kind == flt.not_kind:
        return False
    if flt.since_ns is not None and s.created_ns < flt.since_ns:
        return False
    if flt.until_ns is not None and s.created_ns > flt.until_ns:
        return False
    if flt.parent_id is not None and s.parent_id != flt.parent_id:
        return False
    for k, v in (flt.meta or {}).items():
        if str(s.meta.get(k)) != v:
            return False
    for k, v in (flt.tags or {}).items():
        if k not in s.tags or (v != "" and s.tags[k] != v):
            return False
    return True
