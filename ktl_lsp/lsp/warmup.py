"""Makes the converter's code for the messages of a first session before one is run.

cattrs writes (and compiles) a function per message type the first time one is read or sent:
a ``workspace/executeCommand`` read, ``window/workDoneProgress/create`` asked, ``$/progress``
and ``window/logMessage`` sent, the response. Done once after ``initialized``, in the
background, the first command answers as fast as the next (bench_sessions' "first ktl.run").
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lsprotocol import types as lsp
from pygls.protocol import JsonRPCProtocol

log = logging.getLogger(__name__)

#: What a session sends the editor, in the shapes it sends them.
_SENT: tuple[tuple[str, Any], ...] = (
    (lsp.PROGRESS, lsp.ProgressParams(token="w", value=lsp.WorkDoneProgressBegin(title="w"))),
    (lsp.PROGRESS, lsp.ProgressParams(token="w", value=lsp.WorkDoneProgressReport(message="w"))),
    (lsp.PROGRESS, lsp.ProgressParams(token="w", value=lsp.WorkDoneProgressEnd(message="w"))),
    (lsp.WINDOW_LOG_MESSAGE, lsp.LogMessageParams(type=lsp.MessageType.Info, message="w")),
    (lsp.WINDOW_SHOW_MESSAGE, lsp.ShowMessageParams(type=lsp.MessageType.Info, message="w")),
)


def warm_messages(protocol: JsonRPCProtocol) -> None:
    """Reads and writes one message of each kind a session exchanges, sending nothing."""
    try:
        converter = protocol._converter
        command = protocol.get_message_type(lsp.WORKSPACE_EXECUTE_COMMAND)
        if command is not None:
            converter.structure(
                {
                    "jsonrpc": "2.0",
                    "id": 0,
                    "method": lsp.WORKSPACE_EXECUTE_COMMAND,
                    "params": {"command": "ktl.run", "arguments": [{"argv": ["true"]}]},
                },
                command,
            )
        for method, params in _SENT:
            kind = protocol.get_message_type(method)
            if kind is not None:
                _write(protocol, kind(method=method, params=params, jsonrpc="2.0"))
        create = lsp.WorkDoneProgressCreateParams(token="w")
        _write(protocol, lsp.WorkDoneProgressCreateRequest(id="w", params=create))
        converter.structure(
            {"jsonrpc": "2.0", "id": "w", "result": None}, lsp.WorkDoneProgressCreateResponse
        )
        _write(protocol, lsp.ExecuteCommandResponse(id=0, result={"sessionId": "w"}))
    except Exception:  # a warm-up that fails costs the first command its few ms, nothing else
        log.debug("warming the message converter failed", exc_info=True)


def _write(protocol: JsonRPCProtocol, message: Any) -> None:
    json.dumps(message, default=protocol._serialize_message)
