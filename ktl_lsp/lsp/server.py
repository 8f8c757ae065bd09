"""The language server object: transport, the features it holds, and its session manager.

Features are added by class (:meth:`KtlServer.add_feature`) and found by type
(:meth:`KtlServer.get_feature`); see ``ktl_lsp/lsp/feature.py``. A handler that raises is
contained: the client gets the traceback as a log message and the server keeps serving.
Messages are read by ``transport.MessageReader`` (a size limit, ``maxMessageBytes``) and
written by ``transport.ThreadedWriter`` (never blocking the loop); what the server says back
about a bad message repeats little of it (``ktl_lsp.errors.clip``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import sys
import threading
import traceback
import typing
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from lsprotocol import types as lsp
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcMethodNotFound,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from ktl_lsp import __version__
from ktl_lsp.errors import clip
from ktl_lsp.lsp.feature import command_handler, command_token, lsp_handler, marked
from ktl_lsp.lsp.settings import SWITCHED, Settings
from ktl_lsp.lsp.transport import (
    CONGESTED,
    DRAINED,
    MessageReader,
    ReadSome,
    ThreadedWriter,
    frame_message,
)
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.redact import Redaction, well_known

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The longest error message sent or logged about a request (a traceback says more in the log).
MESSAGE_CHARS = 4096
#: Longer ids are refused: an answer repeats its request's id, and it could be megabytes.
ID_CHARS = 256


class _ClipArgs(logging.Filter):
    """pygls logs a bad request's id, method and params whole: megabytes, for a hostile one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                clip(str(a))
                if isinstance(a, (str, dict, list, tuple)) or hasattr(a, "__attrs_attrs__")
                else a
                for a in record.args
            )
        return True


for _name in ("pygls.protocol.json_rpc", "pygls.protocol.language_server"):
    logging.getLogger(_name).addFilter(_ClipArgs())


class _BadId:
    """A message whose id is no JSON-RPC id (an object, a list, a string of megabytes)."""

    def __init__(self, data: dict[str, Any]) -> None:
        msg_id = data["id"]
        self.is_request = "method" in data
        kinds = {dict: "an object", list: "an array", bool: "a boolean"}
        if isinstance(msg_id, str):
            kind = f"a string of {len(msg_id)} characters"
        else:
            kind = kinds.get(type(msg_id), type(msg_id).__name__)
        self.why = (
            f"an id must be a number or a string of at most {ID_CHARS} characters, not {kind}"
        )


def _fair_id(msg_id: Any) -> bool:
    if isinstance(msg_id, str):
        return len(msg_id) <= ID_CHARS
    return msg_id is None or (isinstance(msg_id, (int, float)) and not isinstance(msg_id, bool))


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

    @lsp_method(lsp.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(
        self, params: lsp.ExecuteCommandParams
    ) -> Generator[Any, Any, Any]:
        # pygls drops the LSP-standard workDoneToken; the handler's task inherits this context.
        command_token.set(params.work_done_token)
        return (yield from super().lsp_workspace__execute_command(params))

    def _check_handler_result(self, future: Any) -> None:
        # pygls files a notification's future under a made-up id and never removes it: a
        # future (with its lock and condition) kept for every didOpen, didChange and didClose.
        for key, pending in list(self._request_futures.items()):
            if pending is future:
                self._request_futures.pop(key, None)
        super()._check_handler_result(future)

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" in data and "id" in data and not _fair_id(data["id"]):
            return _BadId(data)
        return super().structure_message(data)

    def handle_message(self, message: Any) -> None:
        if not isinstance(message, _BadId):
            super().handle_message(message)
        elif message.is_request:
            # JSON-RPC: an id that cannot be told is answered with a null one.
            error = {
                "code": JsonRpcInvalidRequest.CODE,
                "message": f"invalid request: {message.why}",
            }
            self._send_data({"jsonrpc": "2.0", "id": None, "error": error})
        else:
            log.warning("ignored a response: %s", message.why)

    def _get_handler(self, feature_name: str) -> Any:
        try:
            return super()._get_handler(feature_name)
        except JsonRpcMethodNotFound:
            raise JsonRpcMethodNotFound.of(clip(feature_name)) from None

    def _send_response(
        self, msg_id: Any, result: Any | None = None, error: lsp.ResponseError | None = None
    ) -> None:
        if error is not None and len(error.message) > MESSAGE_CHARS:
            error = lsp.ResponseError(error.code, clip(error.message, MESSAGE_CHARS), error.data)
        super()._send_response(msg_id, result, error)

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
        self.reader: MessageReader | None = None
        self._settings = Settings()
        self._manager: SessionManager | None = None
        self._opening = threading.Lock()  # held while a store is being opened
        self._opened: SessionManager | None = None  # opened off the loop, not yet adopted
        self._on_manager: list[Callable[[SessionManager], None]] = []
        self._features: dict[type, object] = {}
        self.writer: ThreadedWriter | None = None

    def add_feature(self, cls: type[T]) -> T:
        """Builds ``cls`` with the collaborators its ``__init__`` names by type, keeps it, and
        registers its handlers. Collaborators must have been added before."""
        hints = typing.get_type_hints(cls.__init__)
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        params = [
            p.name
            for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
            if p.kind in named
        ]
        feature = cls(**{name: self._collaborator(hints[name]) for name in params})
        self._features[cls] = feature
        for kind, name, options, method in marked(feature):
            if kind == "command":
                self.command(name)(command_handler(method))
            else:
                self.feature(name, options)(lsp_handler(method, self._switch(name)))
        return feature

    def _switch(self, method: str) -> Callable[[], bool] | None:
        """What says whether ``method`` is answered now (its setting), if a setting turns it off."""
        if method not in SWITCHED:
            return None
        return lambda: self.settings.answers(method)

    def get_feature(self, cls: type[T]) -> T:
        found = self._features.get(cls)
        if found is None:
            found = next((f for f in self._features.values() if isinstance(f, cls)), None)
        if found is None:
            raise LookupError(f"{cls.__name__} is not a feature of this server")
        return typing.cast(T, found)

    def _collaborator(self, tp: Any) -> Any:
        if isinstance(tp, type) and isinstance(self, tp):
            return self
        return self.get_feature(tp)

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._settings = settings
        if self.reader is not None:
            self.reader.limit = settings.max_message_bytes

    def editor_congested(self) -> bool:
        """The editor reads slower than the server writes: more than a few MiB wait for it."""
        writer = self.protocol.writer
        if isinstance(writer, ThreadedWriter):
            return writer.congested
        if isinstance(writer, asyncio.StreamWriter):
            return writer.transport.get_write_buffer_size() > CONGESTED
        return False

    def when_editor_drained(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` once on the loop when the editor has read what was waiting."""
        writer = self.protocol.writer
        if isinstance(writer, ThreadedWriter):
            writer.when_drained(callback)
            return
        loop = asyncio.get_running_loop()

        def check() -> None:
            # A socket's buffer says nothing when it empties: look again now and then.
            if (
                isinstance(writer, asyncio.StreamWriter)
                and not writer.is_closing()
                and writer.transport.get_write_buffer_size() > DRAINED
            ):
                loop.call_later(0.05, check)
                return
            callback()

        check()

    def when_sessions_open(self, hook: Callable[[SessionManager], None]) -> None:
        """Runs ``hook`` with the session manager once it is open (now, if it is)."""
        if self._manager is not None:
            hook(self._manager)
        else:
            self._on_manager.append(hook)

    @property
    def ktl_protocol(self) -> KtlProtocol:
        assert isinstance(self.protocol, KtlProtocol)
        return self.protocol

    @property
    def manager(self) -> SessionManager:
        """Opened on first use, inside the running loop, so start-up stays fast (and usually
        already opened off the loop by `open_sessions`). Never two at once: two opens of one
        store racing each other's set-up can leave one with recording off."""
        if self._manager is None:
            with self._opening:  # an open under way in a thread: wait for it (tens of ms)
                manager, self._opened = self._opened, None
                if manager is None:
                    manager = SessionManager.open(self.store_path, on_notice=self.notice)
            self._adopt(manager)
        assert self._manager is not None
        return self._manager

    async def open_sessions(self) -> None:
        """Opens the store in a thread (SQLite's open and recovery, ~40 ms) after `initialized`,
        so neither the first command nor the loop waits for it."""
        if self._manager is not None:
            return
        loop = asyncio.get_running_loop()

        def tell(message: str) -> None:  # from the thread, or later from the loop
            loop.call_soon_threadsafe(self.notice, message)

        def open_now() -> None:
            with self._opening:
                if self._manager is None and self._opened is None:
                    self._opened = SessionManager.open(self.store_path, tell, loop)

        await asyncio.to_thread(open_now)
        if self._manager is None and self._opened is not None:
            manager, self._opened = self._opened, None
            self._adopt(manager)

    def _adopt(self, manager: SessionManager) -> None:
        self._manager = manager
        manager.redaction = self.settings.redaction()
        manager.leaving = Redaction.build(True, self.settings.redact.rules())
        if manager.redaction is not None:
            # The first session's redactor would import detect-secrets (~200 ms) on the loop.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().run_in_executor(None, well_known)
        for hook in self._on_manager:
            hook(manager)
        manager.keep_pruning(self.settings.retention)

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
        writer = self.protocol.writer
        if isinstance(writer, ThreadedWriter):
            data = params.get("data")
            writer.write_message(message, len(data) + 128 if data else 256)
        elif isinstance(writer, asyncio.StreamWriter):
            writer.write(frame_message(message))
        else:
            self.protocol._send_data(message)

    def report_server_error(self, error: Exception, source: Any) -> None:
        try:
            self._report(error)
        finally:
            _let_go(error)

    def _report(self, error: Exception) -> None:
        if isinstance(error, JsonRpcInvalidParams):
            return  # the caller's mistake, answered in the response: not a server failure
        data = getattr(error, "data", None)
        if isinstance(data, dict) and isinstance(data.get("traceback"), list):
            # pygls wraps handler exceptions; the original traceback travels in ``data``.
            text = "Traceback (most recent call last):\n" + "".join(data["traceback"]) + str(error)
        else:
            text = "".join(traceback.format_exception(error))
        text = clip(text, 4 * MESSAGE_CHARS)
        log.error("feature failed: %s", text)
        try:
            self.log(f"ktl-lsp: a feature failed and was contained:\n{text}", lsp.MessageType.Error)
        except Exception:
            log.exception("could not report the error to the client")

    def refresh_code_lenses(self) -> None:
        """Asks the editor to re-read CodeLenses, when it can be asked."""
        caps = self.client_capabilities
        ws = caps.workspace if caps else None
        if not (ws and ws.code_lens and ws.code_lens.refresh_support):
            return
        try:
            fut = self.workspace_code_lens_refresh(None)
        except Exception:
            return
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())

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
        """The stdio loop: our reader (a size limit), and a writer thread so a slow editor never
        blocks the loop."""
        from threading import Event

        self._stop_event = stop_event = Event()
        self.reader = MessageReader.of_stream(
            stdin or sys.stdin.buffer,
            self.thread_pool,
            self.settings.max_message_bytes,
            self._refused,
        )
        self.writer = ThreadedWriter(stdout or sys.stdout.buffer)
        self.protocol.set_writer(self.writer)
        try:
            asyncio.run(self._serve(self.reader, stop_event))
        except BrokenPipeError:
            log.error("the connection to the editor is lost; shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def _refused(self, text: str, request_id: int | str | None) -> None:
        """Said once per refused message, in the log and to the editor; a request is answered
        with the same words, so the editor does not wait for it forever."""
        log.error("%s", text)
        try:
            self.log(text, lsp.MessageType.Error)
            if request_id is not None:
                error = lsp.ResponseError(JsonRpcInvalidRequest.CODE, text)
                self.protocol._send_response(request_id, error=error)
        except BrokenPipeError:
            raise
        except Exception:
            log.exception("could not tell the editor")

    async def _serve(self, reader: MessageReader, stop_event: Any) -> None:
        """pygls' message loop (``pygls.io_.run_async``) over a :class:`MessageReader`."""
        while not stop_event.is_set():
            body = await reader.next_body()
            if body is None:
                break
            try:
                message = json.loads(body, object_hook=self.protocol.structure_message)
                del body  # neither stays while the loop waits for the next message
                self.protocol.handle_message(message)
                del message
            except BrokenPipeError:
                raise
            except Exception as exc:
                log.error("unable to handle a message: %s", clip(repr(exc), MESSAGE_CHARS))
                self.report_server_error(exc, JsonRpcException)

    def start_tcp(self, host: str, port: int) -> None:
        """pygls' TCP server, refusing a second editor while one is connected.

        pygls has one protocol object: a second connection took over the first one's replies
        (its requests hung) and initialized the server again.
        """
        from threading import Event

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
            read_some: ReadSome = reader.read
            self.reader = MessageReader(read_some, self.settings.max_message_bytes, self._refused)
            await self._serve(self.reader, stop_event)
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


def _let_go(error: BaseException) -> None:
    """Drops an answered error's tracebacks. Their frames hold the request (its arguments: a
    50 MB value) in a cycle with pygls' future that the collector did not free: each such
    request kept its size in memory."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__


def _tcp_refusal(writer: asyncio.StreamWriter, busy: bool, where: str) -> str | None:
    """Why a TCP connection is not served, or None. The server has no token: only the user who
    started it may drive it (anyone else could run commands as that user)."""
    if busy:
        return f"ktl-lsp on {where} already serves an editor; start another server on another port"
    if sys.platform != "linux":
        return None  # no /proc to ask: loopback only, as on every platform
    from ktl_lsp.lsp.peer import peer_uid

    uid = peer_uid(writer.get_extra_info("sockname")[:2], writer.get_extra_info("peername")[:2])
    if uid == os.getuid():
        return None
    who = "an unknown user" if uid is None else f"another user (uid {uid})"
    return f"ktl-lsp on {where} serves only the user who started it; refused {who}"
