"""The session host: a background process that owns the terminals of sessions that outlive the
editor (``ktl-lsp host``, docs/protocol.md "Sessions that outlive the editor")."""

#: Seconds a host with no client and no running session waits before it ends.
DEFAULT_IDLE_TIMEOUT_S = 300.0
