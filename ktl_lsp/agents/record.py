"""Every call an agent makes is a session of kind ``agent``: who asked (``agent:<client>``),
what (the tool and its arguments, secrets redacted), how it ended and how much it returned, so a
person can list, replay and compare what an agent did like any other work.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import anyio

from ktl_lsp.agents.tools import AGENT_KIND, redact_value
from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager
from ktl_lsp.sessions.model import State
from ktl_lsp.sessions.provenance import REQUEST_PRINCIPAL

#: The MCP methods that are recorded, and the parameter that names what they touch.
RECORDED = {"tools/call": "name", "resources/read": "uri", "prompts/get": "name"}
#: Characters of a call's arguments kept in its session (they are the caller's to size).
MAX_ARGUMENTS = 4000
#: The session of the call being answered: a changing tool asks its question there.
CALL: ContextVar[LiveSession | None] = ContextVar("ktl_agent_call", default=None)


def client_name(ctx: Any) -> str:
    """The client's own name for itself (``clientInfo.name``), else ``unknown``."""
    params = getattr(getattr(ctx, "session", None), "client_params", None)
    info = getattr(params, "client_info", None)
    name = getattr(info, "name", None)
    return str(name)[:80] if name else "unknown"


def principal(ctx: Any) -> str | None:
    """The name of the gateway token the call came with (None on stdio)."""
    scope = getattr(getattr(ctx, "request", None), "scope", None)
    state = scope.get("state") if isinstance(scope, dict) else None
    name = state.get(REQUEST_PRINCIPAL) if isinstance(state, dict) else None
    return str(name) if name else None


def _size(result: Any) -> int:
    try:
        if hasattr(result, "model_dump_json"):
            return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
        return len(json.dumps(result, default=str).encode())
    except (TypeError, ValueError):
        return 0


def _is_error(result: Any) -> bool:
    if isinstance(result, dict):
        return bool(result.get("isError"))
    return bool(getattr(result, "is_error", False))


class Recorder:
    """MCP server middleware (``ServerMiddleware``) recording calls as sessions."""

    def __init__(self, manager: SessionManager, transport: str) -> None:
        self.manager = manager
        self.transport = transport

    async def __call__(self, ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        key = RECORDED.get(ctx.method)
        if key is None or ctx.request_id is None:
            return await call_next(ctx)
        params = dict(ctx.params or {})
        target = str(params.get(key) or "?")[:200]
        args = redact_value(params.get("arguments") or {})
        shown = json.dumps(args, ensure_ascii=False, default=str)
        if len(shown) > MAX_ARGUMENTS:
            args = {"truncated": shown[:MAX_ARGUMENTS]}
        client = client_name(ctx)
        what = f"{ctx.method.split('/')[0].rstrip('s')} {target}"
        who = principal(ctx)
        live = self.manager.create(
            RunSpec(
                argv=[],
                command=f"mcp {what}",
                kind=AGENT_KIND,
                title=f"agent {client}: {target}",
                meta={
                    "requester": f"agent:{client}",
                    "client": client,
                    "transport": self.transport,
                    "method": ctx.method,
                    "target": target,
                    "arguments": args,
                    **({"principal": who} if who else {}),
                },
                tags={"agent": client},
            )
        )
        live.write(f"{what} {shown[:MAX_ARGUMENTS]}\r\n")
        token = CALL.set(live)
        try:
            result = await call_next(ctx)
        except anyio.get_cancelled_exc_class():
            live.write("cancelled: the client went away or cancelled the call\r\n")
            self.manager.finish(live, State.CANCELLED, exit_code=130, error="cancelled")
            raise
        except Exception as exc:
            live.write(f"error: {exc}\r\n")
            self.manager.finish(live, State.ERROR, exit_code=1, error=str(exc)[:500] or "error")
            raise
        finally:
            CALL.reset(token)
        size = _size(result)
        failed = _is_error(result)
        live.session.meta["resultBytes"] = size
        live.write(f"{'error' if failed else 'result'}: {size} bytes\r\n")
        if failed:
            self.manager.finish(live, State.ERROR, exit_code=1, error="the tool reported an error")
        else:
            self.manager.finish(live, State.DONE, exit_code=0)
        return result
