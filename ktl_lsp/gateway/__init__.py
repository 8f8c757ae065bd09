"""HTTP + Server-Sent-Events gateway over the session store, compatible with ktl-agent's.

Routes, query parameters, auth and JSON shapes follow ktl-agent's gateway so a browser or a
tool can talk to either; where ktl-agent has a known flaw we do better (see ``docs/gateway.md``).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ktl_lsp.gateway.auth import Auth, GatewayAuthError
    from ktl_lsp.gateway.server import Gateway, GatewayConfigError

__all__ = ["Auth", "Gateway", "GatewayAuthError", "GatewayConfigError"]


def __getattr__(name: str) -> Any:
    """Imported on first use: aiohttp costs ~250 ms, and `ktl-lsp serve --help` needs none."""
    if name in ("Auth", "GatewayAuthError"):
        from ktl_lsp.gateway import auth

        return getattr(auth, name)
    if name in ("Gateway", "GatewayConfigError"):
        from ktl_lsp.gateway import server

        return getattr(server, name)
    raise AttributeError(name)
