"""HTTP + Server-Sent-Events gateway over the session store, compatible with ktl-agent's.

Routes, query parameters, auth and JSON shapes follow ktl-agent's gateway so a browser or a
tool can talk to either; where ktl-agent has a known flaw we do better (see ``docs/gateway.md``).
"""

from ktl_lsp.gateway.auth import Auth, GatewayAuthError
from ktl_lsp.gateway.server import Gateway, GatewayConfigError

__all__ = ["Auth", "Gateway", "GatewayAuthError", "GatewayConfigError"]
