"""What the editor sees of running sessions: progress, log lines, and the raw terminal stream.

The store keeps every byte; the editor is sent a paced view. Each channel has its own pace
(docs/protocol.md): raw data coalesced every few milliseconds, at most 20 log messages and
10 progress reports a second per session, so a flood never freezes the editor.

An editor that stops reading (its pipe full, a few MiB queued: ``KtlServer.editor_congested``)
is sent nothing more until it has read again: raw data is then caught up from the store, in
order and in pieces, log lines and progress resume. Memory stays bounded and the loop never
waits for the editor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types as lsp

from ktl_lsp.aio import background
from ktl_lsp.errors import UserError
from ktl_lsp.lsp.feature import Feature
from ktl_lsp.lsp.server import KtlServer
from ktl_lsp.pty.text import LineSplitter, newest_line
from ktl_lsp.sessions.bus import Dropped, Item, StateChange
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import Frame, FrameType, Session

DATA_INTERVAL_S = 0.008
DATA_MAX_CHUNK = 1024 * 1024
LOG_INTERVAL_S = 0.05
PROGRESS_INTERVAL_S = 0.1
SUMMARY_INTERVAL_S = 2.0
TAIL_CHARS = 2048
#: Frames read from the store at a time when catching a stalled editor up.
CATCH_UP_FRAMES = 64


class Pacer:
    """Runs ``fn`` at most once per ``interval``: the first poke at once, later ones coalesced."""

    def __init__(self, interval: float, fn: Callable[[], None]) -> None:
        self.interval = interval
        self.fn = fn
        self._last = 0.0
        self._handle: asyncio.Handle | None = None

    def poke(self) -> None:
        if self._handle is not None:
            return
        loop = asyncio.get_running_loop()
        delay = self._last + self.interval - loop.time()
        if delay <= 0:
            self._handle = loop.call_soon(self._fire)
        else:
            self._handle = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._last = asyncio.get_running_loop().time()
        self.fn()

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.fn()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


@dataclass
class Watch:
    """The editor's view of one session that it started (or asked to follow)."""

    session_id: str
    short: str
    token: Any = None
    progress_begun: bool = False
    lines: LineSplitter = field(default_factory=LineSplitter)
    log_lines: list[str] = field(default_factory=list)
    log_bytes: int = 0
    total_bytes: int = 0
    total_lines: int = 0
    tail: str = ""
    summary_mode: bool = False
    last_reported: str = ""
    pacers: list[Pacer] = field(default_factory=list)
    #: Known completion (plans: nodes finished / total), sent with progress reports.
    percentage: int | None = None
    last_percentage: int | None = None


class EditorFeed(Feature):
    """Listens to the session bus from the moment the store opens."""

    def __init__(self, server: KtlServer) -> None:
        self.server = server
        server.when_sessions_open(self._listen)
        self.watches: dict[str, Watch] = {}
        self._data: dict[str, list[str]] = {}
        self._data_seq: dict[str, int] = {}
        self._data_bytes = 0
        self._data_pacer: Pacer | None = None
        #: The first output frame of each session not sent to the editor yet (while
        #: ``_data_first`` holds that of the data waiting in ``_data``).
        self._data_first: dict[str, int] = {}
        #: Sessions whose data the editor did not take: first seq to send from the store.
        self._behind: dict[str, int] = {}
        #: ``ktl/sessionState`` of a session that ended while behind, sent after its data.
        self._held_states: dict[str, dict[str, Any]] = {}
        self._catching_up = False
        self._waiting: dict[Pacer, Watch] = {}

    def _listen(self, manager: SessionManager) -> None:
        manager.listen(self.on_item)

    # bus listener (inline, must be cheap) --------------------------------------------------
    def on_item(self, item: Item) -> None:
        if isinstance(item, Frame):
            if item.type is FrameType.OUTPUT:
                self._on_output(item)
        elif isinstance(item, StateChange):
            self._on_state(item.session)
        elif isinstance(item, Dropped):  # pragma: no cover - listeners never drop
            pass

    def _on_output(self, frame: Frame) -> None:
        text = frame.text()
        if self.server.settings.session_data:
            self._data_seq[frame.session_id] = frame.seq
        if self.server.settings.session_data and frame.session_id not in self._behind:
            self._data.setdefault(frame.session_id, []).append(text)
            self._data_first.setdefault(frame.session_id, frame.seq)
            self._data_bytes += len(frame.data)
            if self._data_pacer is None:
                self._data_pacer = Pacer(DATA_INTERVAL_S, self._send_data)
            if self._data_bytes >= DATA_MAX_CHUNK:
                self._data_pacer.flush()
            else:
                self._data_pacer.poke()
        watch = self.watches.get(frame.session_id)
        if watch is None:
            return
        watch.total_bytes += len(frame.data)
        watch.total_lines += text.count("\n")
        # Keep only the end of the stream for progress; the newest line is found when shown
        # (a frame longer than that is not copied whole first).
        if len(text) >= TAIL_CHARS:
            watch.tail = text[-TAIL_CHARS:]
        else:
            watch.tail = (watch.tail + text)[-TAIL_CHARS:]
        if watch.summary_mode:
            pass
        elif (
            self.server.settings.session_data
            or watch.log_bytes > self.server.settings.log_message_limit
        ):
            watch.summary_mode = True
            watch.log_lines.clear()
        else:
            watch.log_lines.extend(watch.lines.feed(text))
            watch.log_bytes += len(frame.data)
        for pacer in watch.pacers:
            pacer.poke()

    def _send_data(self) -> None:
        pending, self._data = self._data, {}
        firsts, self._data_first = self._data_first, {}
        self._data_bytes = 0
        congested = self.server.editor_congested()
        for sid, parts in pending.items():
            if congested or sid in self._behind:
                self._behind.setdefault(sid, firsts[sid])
                continue
            self.server.send_raw_notification(
                "ktl/sessionData",
                {"sessionId": sid, "seq": self._data_seq[sid], "data": "".join(parts)},
            )
        if self._behind and not self._catching_up:
            self._catching_up = True
            self.server.when_editor_drained(self._start_catch_up)

    def _start_catch_up(self) -> None:
        background(self._catch_up(), "ktl-feed-catch-up")

    async def _catch_up(self) -> None:
        """Sends each lagging session's output from the store, a piece at a time and only
        while the editor keeps up, until it has all that was seen on the bus; then the session
        is live again (no await between the check and the switch, so no frame falls between)."""
        try:
            while self._behind:
                if self.server.editor_congested():
                    await self._editor_drained()
                    continue
                sid, from_seq = next(iter(self._behind.items()))
                try:
                    frames, _ = await self.server.manager.frames(sid, from_seq, CATCH_UP_FRAMES)
                except UserError:  # deleted meanwhile
                    frames = []
                taken: list[Frame] = []
                size = 0
                for f in frames:
                    taken.append(f)
                    size += len(f.data)
                    if size >= DATA_MAX_CHUNK:
                        break
                output = [f for f in taken if f.type is FrameType.OUTPUT]
                if output:
                    self.server.send_raw_notification(
                        "ktl/sessionData",
                        {
                            "sessionId": sid,
                            "seq": output[-1].seq,
                            "data": "".join(f.text() for f in output),
                        },
                    )
                next_seq = taken[-1].seq + 1 if taken else from_seq
                if not taken or next_seq > self._data_seq.get(sid, 0):
                    del self._behind[sid]
                    held = self._held_states.pop(sid, None)
                    if held is not None:
                        self.server.send_raw_notification("ktl/sessionState", held)
                else:
                    self._behind[sid] = next_seq
        finally:
            self._catching_up = False

    async def _editor_drained(self) -> None:
        drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not drained.done():
                drained.set_result(None)

        self.server.when_editor_drained(done)
        await drained

    def _after_drain(self, w: Watch, pacer: Pacer) -> None:
        """The editor is behind: ``pacer`` fires again once it has read."""
        if not self._waiting:
            self.server.when_editor_drained(self._drained)
        self._waiting[pacer] = w

    def _drained(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for pacer, w in waiting.items():
            if self.watches.get(w.session_id) is w:
                pacer.poke()

    def _on_state(self, session: Session) -> None:
        if self._data_pacer is not None and session.state.final:
            self._data_pacer.flush()
        if self.server.settings.session_data:
            params: dict[str, Any] = {"sessionId": session.id, "state": str(session.state)}
            if session.exit_code is not None:
                params["exitCode"] = session.exit_code
            if session.error:
                params["error"] = session.error
            if session.id in self._behind:
                self._held_states[session.id] = params
            else:
                self.server.send_raw_notification("ktl/sessionState", params)
        watch = self.watches.get(session.id)
        if watch is not None and session.state.final:
            self._end(watch, session)

    # per-session channels -----------------------------------------------------------------
    def flush_data(self) -> None:
        """Sends the output waiting for its pace now (before a notification about it)."""
        if self._data_pacer is not None:
            self._data_pacer.flush()

    def watch(self, session: Session, token: Any = None) -> Watch:
        w = Watch(session.id, session.id[:8])
        w.pacers = [
            Pacer(LOG_INTERVAL_S, lambda: self._send_log(w)),
            Pacer(PROGRESS_INTERVAL_S, lambda: self._send_progress(w)),
            Pacer(SUMMARY_INTERVAL_S, lambda: self._send_summary(w)),
        ]
        self.watches[session.id] = w
        if token is not None:
            self._begin(w, token, session)
        elif self.server.client_supports_progress():
            background(self._create_progress(w, session))
        return w

    async def _create_progress(self, w: Watch, session: Session) -> None:
        token = f"ktl-session-{session.id}"
        try:
            await self.server.work_done_progress.create_async(token)
        except Exception:
            return  # the client said no: logMessage alone carries the output
        self._begin(w, token, session)
        if session.id not in self.watches:
            # Ended before the client answered: show it begun and ended, so the client's
            # progress UI has a title and closes cleanly.
            self._progress_end(token, session)

    def _begin(self, w: Watch, token: Any, session: Session) -> None:
        w.token = token
        w.progress_begun = True
        progress = self.server.work_done_progress
        progress.begin(
            token,
            lsp.WorkDoneProgressBegin(title=f"ktl: {session.title[:60]}", cancellable=True),
        )
        future = progress.tokens.get(token)
        if future is not None:
            manager = self.server.manager

            def cancelled(f: Any) -> None:
                if f.cancelled() and manager.is_running_here(session.id):
                    manager.cancel(session.id)

            future.add_done_callback(cancelled)

    def _send_log(self, w: Watch, final: bool = False) -> None:
        if not w.log_lines:
            return
        if not final and self.server.editor_congested():
            self._after_drain(w, w.pacers[0])  # the lines wait (at most logMessageLimit)
            return
        lines, w.log_lines = w.log_lines, []
        text = "\n".join(f"[{w.short}] {line}" for line in lines)
        self.server.log(text)

    def _send_summary(self, w: Watch) -> None:
        if w.summary_mode and self.server.editor_congested():
            self._after_drain(w, w.pacers[2])
        elif w.summary_mode:
            mb = w.total_bytes / 1e6
            lines = f"{w.total_lines / 1000:.1f}k" if w.total_lines >= 1000 else str(w.total_lines)
            self.server.log(f"[{w.short}] … {mb:.1f} MB, {lines} lines, see session {w.session_id}")

    def report(self, session_id: str, percentage: int) -> None:
        """Sets a watched session's completion (0-100); it rides on the paced progress reports."""
        w = self.watches.get(session_id)
        if w is not None:
            w.percentage = max(0, min(100, percentage))
            w.pacers[1].poke()

    def _send_progress(self, w: Watch) -> None:
        if self.server.editor_congested():
            self._after_drain(w, w.pacers[1])
            return
        line = newest_line(w.tail)
        changed = bool(line) and line != w.last_reported
        if w.progress_begun and (changed or w.percentage != w.last_percentage):
            w.last_reported = line
            w.last_percentage = w.percentage
            self.server.work_done_progress.report(
                w.token,
                lsp.WorkDoneProgressReport(message=line[:120] or None, percentage=w.percentage),
            )

    def _end(self, w: Watch, session: Session) -> None:
        tail = w.lines.current()
        if tail and not w.summary_mode:
            w.log_lines.append(tail)
        for pacer in w.pacers:
            pacer.cancel()
        self._send_log(w, final=True)
        if w.summary_mode:
            self._send_summary(w)
        if w.progress_begun:
            self._progress_end(w.token, session)
        self.watches.pop(session.id, None)

    def _progress_end(self, token: Any, session: Session) -> None:
        secs = session.duration_ms / 1000
        if session.exit_code is not None:
            message = f"exit {session.exit_code} in {secs:.1f}s"
        else:
            message = f"{session.state} in {secs:.1f}s"
        progress = self.server.work_done_progress
        progress.end(token, lsp.WorkDoneProgressEnd(message=message))
        # pygls never forgets tokens (pygls #607): a server that runs for days must.
        progress.tokens.pop(token, None)
