"""How a gateway is served: plain data, importable without the HTTP stack (the CLI shows these
defaults in its help without paying for aiohttp)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class GatewayOptions:
    host: str = "127.0.0.1"
    port: int = 0  #: 0 picks a free port
    token: str | None = None  #: default: the store's token file
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Require client certificates signed by this CA (PEM), besides the token.
    tls_client_ca: Path | None = None
    allow_query_token: bool = False  #: ``?token=``: development only, it ends up in logs
    cors_origins: tuple[str, ...] = ()
    #: A new connection must send a complete request head within this (slowloris).
    header_timeout_s: float = 10.0
    #: A kept-alive connection waiting for its next request is closed after this. A request
    #: being answered (an SSE tail) is never cut by it.
    idle_timeout_s: float = 60.0
    event_cache_bytes: int = 16 << 20  #: encoded SSE events kept for other tails
    bundle_max_bytes: int = 1 << 30  #: the largest .ktlbundle ``POST /api/v1/bundles`` takes
