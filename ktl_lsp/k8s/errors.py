"""What can go wrong talking to a cluster, as one small hierarchy with messages for people.

    K8sError
    ├── ConfigError       no kubeconfig, unknown context, unreadable credentials
    ├── Unreachable       connection refused, DNS, TLS, timeouts (the cluster is not there)
    └── ApiError          the API server answered with a Status (``code``, ``reason``, ``causes``)
        ├── Unauthorized  401: credentials expired or wrong
        ├── Forbidden     403: RBAC said no
        └── Conflict      409 from server-side apply (``causes`` name the other field manager)

The kubernetes client's exceptions are translated at the boundary (``client.py``), so the rest
of ktl never imports them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class K8sError(Exception):
    """Base of every cluster error; ``str()`` is meant for the user."""


class ConfigError(K8sError):
    pass


class Unreachable(K8sError):
    pass


@dataclass(frozen=True)
class Cause:
    """One entry of ``Status.details.causes``."""

    field: str
    reason: str
    message: str


class ApiError(K8sError):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        causes: tuple[Cause, ...] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.causes = causes
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


class Unauthorized(ApiError):
    def __str__(self) -> str:
        return (
            f"the cluster refused the credentials (401 {self.reason or 'Unauthorized'}): "
            "they may have expired; log in again or pick another context"
        )


class Forbidden(ApiError):
    def __str__(self) -> str:
        return f"forbidden by the cluster's RBAC: {self.message}"


class Conflict(ApiError):
    pass


_TYPED_PATCH = re.compile(r"^failed to create typed patch object \([^)]*\): (?P<rest>.*)$", re.S)
_PATH_ERROR = re.compile(r"^\s*(?P<field>\.\S+): (?P<message>.+)$")


def typed_patch_causes(message: str) -> tuple[Cause, ...]:
    """The fields of a refused server-side apply (``failed to create typed patch object (...):
    .spec.foo: field not declared in schema``, one per line after ``errors:`` when several):
    the API gives them only in the message."""
    m = _TYPED_PATCH.match(message)
    if m is None:
        return ()
    found = (_PATH_ERROR.match(line) for line in m.group("rest").splitlines())
    return tuple(
        Cause(p.group("field"), "FieldValueInvalid", p.group("message")) for p in found if p
    )


def api_error(status: int, body: bytes | str | None, what: str = "") -> ApiError:
    """An ``ApiError`` from an HTTP answer, reading the ``Status`` body when there is one."""
    data: Any = None
    if body:
        try:
            data = json.loads(body)
        except (ValueError, TypeError):
            data = None
    reason = ""
    message = ""
    details: dict[str, Any] = {}
    if isinstance(data, dict) and data.get("kind") == "Status":
        reason = str(data.get("reason") or "")
        message = str(data.get("message") or "")
        found = data.get("details")
        details = found if isinstance(found, dict) else {}
    if not message:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
        message = text.strip()[:500] or f"HTTP {status}"
        if what:
            message = f"{what}: {message}"
    causes = tuple(
        Cause(str(c.get("field") or ""), str(c.get("reason") or ""), str(c.get("message") or ""))
        for c in details.get("causes") or []
        if isinstance(c, dict)
    )
    if not causes and reason == "BadRequest":
        causes = typed_patch_causes(message)
    cls: type[ApiError] = {401: Unauthorized, 403: Forbidden, 409: Conflict}.get(status, ApiError)
    if cls is Conflict and not any(c.reason == "FieldManagerConflict" for c in causes):
        cls = ApiError  # an ordinary 409 (AlreadyExists, optimistic lock), not an apply conflict
    return cls(status, reason, message, causes, details)
