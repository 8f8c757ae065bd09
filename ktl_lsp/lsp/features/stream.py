"""What the editor sees of running sessions: progress, log lines, and the raw terminal stream.

The store keeps every byte; the editor is sent a paced view. Each channel has its own pace
(docs/protocol.md): raw data coalesced every few milliseconds, at most 20 log messages and
10 progress reports a second per session, so a flood never freezes the editor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types as lsp

from ktl_lsp.aio import background
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
            self._data.setdefault(frame.session_id, []).append(text)
            self._data_seq[frame.session_id] = frame.seq
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
        # Keep only the end of the stream for progress; the newest line is found when shown.
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
        self._data_bytes = 0
        for sid, parts in pending.items():
            self.server.send_raw_notification(
                "ktl/sessionData",
                {"sessionId": sid, "seq": self._data_seq[sid], "data": "".join(parts)},
            )

    def _on_state(self, session: Session) -> None:
        if self._data_pacer is not None and session.state.final:
            self._data_pacer.flush()
        if self.server.settings.session_data:
            params: dict[str, Any] = {"sessionId": session.id, "state": str(session.state)}
            if session.exit_code is not None:
                params["exitCode"] = session.exit_code
            if session.error:
                params["error"] = session.error
            self.server.send_raw_notification("ktl/sessionState", params)
        watch = self.watches.get(session.id)
        if watch is not None and session.state.final:
            self._end(watch, session)

    # per-session channels -----------------------------------------------------------------
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

    def _send_log(self, w: Watch) -> None:
        if not w.log_lines:
            return
        lines, w.log_lines = w.log_lines, []
        text = "\n".join(f"[{w.short}] {line}" for line in lines)
        self.server.log(text)

    def _send_summary(self, w: Watch) -> None:
        if w.summary_mode:
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
        self._send_log(w)
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
