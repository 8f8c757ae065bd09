"""Builds the language server and wires features into it.

Each feature module has a ``setup(server)``; a feature that raises is contained: the client gets
the traceback as a log message and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from ktl_lsp import __version__
from ktl_lsp.features.stream import EditorFeed

if TYPE_CHECKING:
    from ktl_lsp.features.replay import ReplayService
    from ktl_lsp.gateway.remote import RemoteGateway
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.settings import Settings
from ktl_lsp.transport import ThreadedWriter, frame_message

log = logging.getLogger(__name__)


class ListenError(Exception):
    """``--tcp`` could not listen (the port is taken, the address is not ours)."""


class KtlProtocol(LanguageServerProtocol):
    """Adds hooks for ``$/cancelRequest``: pygls answers it but leaves running handlers alone."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cancel_hooks: dict[Any, Callable[[], None]] = {}
        #: Set by ``exit`` over TCP: what the process exits with once the connection is closed.
        self.exit_code: int | None = None

    @lsp_method(lsp.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        writer = self.writer
        if not isinstance(writer, asyncio.StreamWriter):
            yield from super().lsp_exit(*args)
            return
        # Over TCP pygls would sys.exit() inside asyncio's connection callback, which logs the
        # SystemExit as an unhandled error on every normal exit. Hang up instead: the server
        # stops when its one connection ends, and the process exits with this code.
        if (user_handler := self.fm.features.get(lsp.EXIT)) is not None:
            yield user_handler, args, None
        self.exit_code = 0 if self._shutdown else 1
        writer.close()

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        super()._handle_cancel_notification(msg_id)
        hook = self.cancel_hooks.pop(msg_id, None)
        if hook is not None:
            try:
                hook()
            except Exception:
                log.exception("cancel hook failed")


class KtlServer(LanguageServer):
    def __init__(self, store_path: Path) -> None:
        super().__init__("ktl-lsp", __version__, protocol_cls=KtlProtocol)
        self.store_path = store_path
        self.settings = Settings()
        self._manager: SessionManager | None = None
        self.feed: EditorFeed | None = None
        self.replay: ReplayService | None = None
        self.remote: RemoteGateway | None = None
        self.writer: ThreadedWriter | None = None

    @property
    def ktl_protocol(self) -> KtlProtocol:
        assert isinstance(self.protocol, KtlProtocol)
        return self.protocol

    @property
    def manager(self) -> SessionManager:
        """Opened on first use, inside the running loop, so start-up stays fast."""
        if self._manager is None:
            self._manager = SessionManager.open(self.store_path, on_notice=self.notice)
            self._manager.redaction = self.settings.redaction()
            if self.feed is not None:
                self._manager.bus.listen(self.feed.on_item)
            self._manager.keep_pruning(self.settings.retention)
        return self._manager

    def notice(self, message: str) -> None:
        """Something the user should know once (recording off, a bad setting)."""
        self.window_show_message(
            lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=message)
        )
        self.log(message, lsp.MessageType.Warning)

    def log(self, message: str, kind: lsp.MessageType = lsp.MessageType.Log) -> None:
        self.window_log_message(lsp.LogMessageParams(type=kind, message=message))

    def send_raw_notification(self, method: str, params: dict[str, Any]) -> None:
        """A notification whose params are plain JSON already: skips the attrs round trip,
        which is most of the cost when streaming megabytes of terminal output."""
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if isinstance(self.protocol.writer, ThreadedWriter):
            data = params.get("data")
            self.protocol.writer.write_message(message, len(data) + 128 if data else 256)
        else:
            self.protocol._send_data(message)

    def report_server_error(self, error: Exception, source: Any) -> None:
        if isinstance(error, JsonRpcInvalidParams):
            return  # the caller's mistake, answered in the response: not a server failure
        data = getattr(error, "data", None)
        if isinstance(data, dict) and isinstance(data.get("traceback"), list):
            # pygls wraps handler exceptions; the original traceback travels in ``data``.
            text = "Traceback (most recent call last):\n" + "".join(data["traceback"]) + str(error)
        else:
            text = "".join(traceback.format_exception(error))
        log.error("feature failed: %s", text)
        try:
            self.log(f"ktl-lsp: a feature failed and was contained:\n{text}", lsp.MessageType.Error)
        except Exception:
            log.exception("could not report the error to the client")

    def client_supports_progress(self) -> bool:
        caps = self.client_capabilities
        return bool(caps and caps.window and caps.window.work_done_progress)

    def shutdown_sessions(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    def _start_io_async(
        self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
    ) -> None:
        """pygls' stdio loop, with a writer thread so a slow editor never blocks the loop."""
        from threading import Event

        from pygls.io_ import StdinAsyncReader, run_async

        self._stop_event = Event()
        reader = StdinAsyncReader(stdin or sys.stdin.buffer, self.thread_pool)
        self.writer = ThreadedWriter(stdout or sys.stdout.buffer)
        self.protocol.set_writer(self.writer)
        try:
            asyncio.run(
                run_async(
                    stop_event=self._stop_event,
                    reader=reader,
                    protocol=self.protocol,
                    logger=log,
                    error_handler=self.report_server_error,
                )
            )
        except BrokenPipeError:
            log.error("the connection to the editor is lost; shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def start_tcp(self, host: str, port: int) -> None:
        """pygls' TCP server, refusing a second editor while one is connected.

        pygls has one protocol object: a second connection took over the first one's replies
        (its requests hung) and initialized the server again.
        """
        from threading import Event

        from pygls.io_ import run_async

        self._stop_event = stop_event = Event()
        connected: list[object] = []

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            why = _tcp_refusal(writer, bool(connected), f"{host}:{port}")
            if why is not None:
                log.warning("refused %s: %s", writer.get_extra_info("peername"), why)
                # Said once, in case the client shows messages before `initialize`.
                params = {"type": lsp.MessageType.Error.value, "message": why}
                writer.write(
                    frame_message(
                        {"jsonrpc": "2.0", "method": "window/showMessage", "params": params}
                    )
                )
                writer.close()
                return
            connected.append(writer)
            self.protocol.set_writer(writer)
            await run_async(
                stop_event=stop_event,
                reader=reader,
                protocol=self.protocol,
                logger=log,
                error_handler=self.report_server_error,
            )
            self.shutdown()

        async def serve() -> None:
            try:
                self._server = await asyncio.start_server(connection, host, port)
            except OSError as exc:
                raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
            async with self._server:
                await self._server.serve_forever()

        with contextlib.suppress(asyncio.CancelledError):  # shutdown() closed the listener
            asyncio.run(serve())

    def shutdown(self) -> None:
        # Also reached when the client vanishes (stdin closed): children must not outlive us.
        self.shutdown_sessions()
        super().shutdown()  # type: ignore[no-untyped-call]


def _tcp_refusal(writer: asyncio.StreamWriter, busy: bool, where: str) -> str | None:
    """Why a TCP connection is not served, or None. The server has no token: only the user who
    started it may drive it (anyone else could run commands as that user)."""
    if busy:
        return f"ktl-lsp on {where} already serves an editor; start another server on another port"
    if sys.platform != "linux":
        return None  # no /proc to ask: loopback only, as on every platform
    from ktl_lsp.peer import peer_uid

    uid = peer_uid(writer.get_extra_info("sockname")[:2], writer.get_extra_info("peername")[:2])
    if uid == os.getuid():
        return None
    who = "an unknown user" if uid is None else f"another user (uid {uid})"
    return f"ktl-lsp on {where} serves only the user who started it; refused {who}"


#: Feature modules under ``ktl_lsp.features``, set up in this order (lifecycle first: it reads
#: the settings every other feature uses).
FEATURES = (
    "lifecycle",
    "stream",
    "sessions",
    "stats",
    "replay",
    "remote",
    "diagnostics",
    "codelens",
    "k8s",
    "k8s_browse",
    "k8s_exec",
    "port_forward",
    "cluster_crds",
    "plans",
)


def build(store_path: Path) -> KtlServer:
    server = KtlServer(store_path)
    for name in FEATURES:
        importlib.import_module(f"ktl_lsp.features.{name}").setup(server)
    return server
