"""Features: the objects a server holds, and the one boundary between handlers and JSON-RPC.

A feature is a class whose ``__init__`` names its collaborators by type (the server, other
features, services); :meth:`KtlServer.add_feature` builds it with those, keeps it, and registers
the methods marked :func:`command` or :func:`handles`. Handlers stay thin: a command method
receives its argument object already parsed (from its first parameter's annotation) and may raise
domain errors, which :func:`jsonrpc_error` turns into the error the protocol promises.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pygls.exceptions import JsonRpcException

from ktl_lsp.errors import UserError
from ktl_lsp.k8s.errors import K8sError
from ktl_lsp.lsp.arguments import ArgumentError, parse

#: LSP 3.17 RequestFailed: the request was well formed, the world said no (a cluster refused).
REQUEST_FAILED = -32803

#: ``ExecuteCommandParams.workDoneToken`` of the command being handled (set by the protocol).
command_token: contextvars.ContextVar[int | str | None] = contextvars.ContextVar(
    "ktl_command_token", default=None
)

M = TypeVar("M", bound=Callable[..., Any])


class Feature:
    """Base of the server's features; subclasses add their collaborators to ``__init__``."""


@dataclass
class NoArgs:
    """A command that takes no arguments (an empty object, or none)."""


def command(name: str) -> Callable[[M], M]:
    """Marks a feature method as the handler of ``workspace/executeCommand`` ``name``."""

    def mark(fn: M) -> M:
        fn.__ktl_command__ = name  # type: ignore[attr-defined]
        return fn

    return mark


def handles(method: str, options: Any = None) -> Callable[[M], M]:
    """Marks a feature method as the handler of the LSP ``method``."""

    def mark(fn: M) -> M:
        fn.__ktl_lsp__ = (method, options)  # type: ignore[attr-defined]
        return fn

    return mark


def marked(feature: object) -> Iterator[tuple[str, str, Any, Callable[..., Any]]]:
    """``("command" | "lsp", name, options, bound method)`` for each marked method."""
    seen: set[str] = set()
    for klass in type(feature).__mro__:
        for attr, fn in vars(klass).items():
            if attr in seen or not callable(fn):
                continue
            seen.add(attr)
            if (name := getattr(fn, "__ktl_command__", None)) is not None:
                yield "command", name, None, getattr(feature, attr)
            elif (spec := getattr(fn, "__ktl_lsp__", None)) is not None:
                yield "lsp", spec[0], spec[1], getattr(feature, attr)


def jsonrpc_error(exc: Exception) -> JsonRpcException | None:
    """The JSON-RPC error for a domain error, or None for a bug (reported as one)."""
    if isinstance(exc, JsonRpcException):
        return exc
    if isinstance(exc, UserError):
        return ArgumentError(str(exc))
    if isinstance(exc, K8sError):
        return JsonRpcException(str(exc), REQUEST_FAILED)
    return None


def command_handler(method: Callable[..., Any]) -> Callable[..., Any]:
    """The pygls handler for a command method: parse, call, translate errors.

    The method's first parameter's annotation is its argument dataclass (``NoArgs`` when it
    takes none). A coroutine stays a coroutine, a plain method stays inline on the loop.
    """
    hints = typing.get_type_hints(method)
    hints.pop("return", None)
    arg_type = next(iter(hints.values()), NoArgs)

    if asyncio.iscoroutinefunction(method):

        async def run_async(*args: Any) -> Any:
            with _as_jsonrpc():
                return await method(parse(arg_type, args))

        return _named(run_async, method)

    def run(*args: Any) -> Any:
        with _as_jsonrpc():
            return method(parse(arg_type, args))

    return _named(run, method)


@contextlib.contextmanager
def _as_jsonrpc() -> Iterator[None]:
    """Domain errors leave as the JSON-RPC error they stand for; bugs leave as they are."""
    try:
        yield
    except Exception as exc:
        error = jsonrpc_error(exc)
        if error is None or error is exc:
            raise
        raise error from exc


def _named(handler: Callable[..., Any], method: Callable[..., Any]) -> Callable[..., Any]:
    # Not functools.wraps: pygls reads the signature (through __wrapped__) to convert arguments.
    handler.__name__ = handler.__qualname__ = getattr(method, "__qualname__", "handler")
    return handler


def lsp_handler(
    method: Callable[..., Any], answers: Callable[[], bool] | None = None
) -> Callable[..., Any]:
    """A plain function around a bound method (pygls sets attributes on what it registers).

    With ``answers``, a request that comes while it says no gets the empty answer without
    calling the method: ``null``, or for a resolve request its own item back unchanged.
    """
    resolve = str(getattr(method, "__ktl_lsp__", ("",))[0]).endswith("/resolve")

    def refused() -> bool:
        return answers is not None and not answers()

    if asyncio.iscoroutinefunction(method):

        async def run_async(params: Any) -> Any:
            if refused():
                return params if resolve else None
            return await method(params)

        return run_async

    def run(params: Any) -> Any:
        if refused():
            return params if resolve else None
        return method(params)

    return run
