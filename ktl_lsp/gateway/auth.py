"""Who may use the gateway: one token per store, and one-time login codes for browser links.

The token lives in a 0600 file beside the store, so every process serving the same store (the
editor's server, ``ktl-lsp serve``) accepts the same token and can mint login codes for the
others. A login code is ``<expiry>.<nonce>.<hmac>``: anyone holding the token can make one,
the gateway that redeems it remembers the nonce until it expires, so it works once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from pathlib import Path

from ktl_lsp.sessions import private
from ktl_lsp.sessions.provenance import DEFAULT_TOKEN_NAME

CODE_TTL_S = 120
COOKIE = "ktl_token"


class GatewayAuthError(Exception):
    """Why a request was refused; ``str()`` is the body ktl-agent sends."""


def token_path(store: Path) -> Path:
    return store.with_name(store.name + ".gateway-token")


def used_codes_dir(store: Path) -> Path:
    return store.with_name(store.name + ".gateway-codes")


def load_or_create_token(store: Path) -> str:
    """The store's gateway token, created (0600) on first use."""
    path = token_path(store)
    try:
        text = path.read_text().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    private.make_dirs(path.parent)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    try:
        os.link(tmp, path)  # first writer wins when two processes race
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def rotate_token(store: Path) -> str:
    """Replaces the store's token (atomically, 0600). Running gateways notice on their next
    request: the old token, cookies holding it and codes signed with it stop working."""
    path = token_path(store)
    private.make_dirs(path.parent)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(path.name + f".{os.getpid()}.rotate")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return token


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of any two strings: header bytes that are not UTF-8 arrive as
    lone surrogates, which neither ``str.encode()`` nor ``compare_digest`` on ``str`` take."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def _strip_bearer(value: str) -> str:
    value = value.strip()
    if value[:7].lower() == "bearer ":
        return value[7:].strip()
    return value


class Auth:
    """Checks requests against the token; with ``source`` (the token file) it follows
    rotations: one ``stat`` per request notices a replaced file. ``name`` is what sessions
    started with the token record as their ``principal`` (the audit trail's who)."""

    def __init__(
        self,
        token: str | None,
        source: Path | None = None,
        used_dir: Path | None = None,
        name: str = DEFAULT_TOKEN_NAME,
    ) -> None:
        self.token = token
        self.name = name
        self._used: dict[str, float] = {}
        self._source = source
        #: Redeemed codes, shared by every process serving the store (one file per code, made
        #: with O_EXCL): a link works once whichever gateway it is opened on.
        self._used_dir = used_dir
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        if self._source is None:
            return None
        try:
            st = os.stat(self._source)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _follow(self) -> None:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return  # unchanged, or deleted: keep serving with the token we have
        assert self._source is not None
        try:
            text = self._source.read_text().strip()
        except OSError:
            return
        self._seen = stamp
        if text and text != self.token:
            self.token = text
            self._used.clear()

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def check(self, authorization: str | None, header_token: str | None, cookie: str | None) -> str:
        """ktl-agent's order: the first non-empty source decides; no fallback to the others.
        The accepted token's name ("" when no token is required)."""
        self._follow()
        if not self.token:
            return ""
        for source in (authorization, header_token, cookie):
            if source and source.strip():
                given = _strip_bearer(source)
                if not _same(given, self.token):
                    raise GatewayAuthError("invalid authentication token")
                return self.name
        raise GatewayAuthError("missing authentication token")

    # one-time login codes ----------------------------------------------------------------
    def _mac(self, payload: str) -> str:
        assert self.token
        return hmac.new(self.token.encode(), payload.encode(), hashlib.sha256).hexdigest()[:40]

    def mint_code(self, ttl_s: float = CODE_TTL_S) -> str:
        self._follow()
        if not self.token:
            return ""
        payload = f"{int(time.time() + ttl_s)}.{secrets.token_urlsafe(12)}"
        encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{encoded}.{self._mac(payload)}"

    def redeem(self, code: str) -> bool:
        self._follow()
        if not self.token or not code or len(code) > 300:
            return False
        encoded, _, mac = code.rpartition(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            expiry_s, nonce = payload.split(".", 1)
            expiry = int(expiry_s)
        except (ValueError, UnicodeDecodeError):
            return False
        if not _same(mac, self._mac(payload)):
            return False
        now = time.time()
        self._used = {n: t for n, t in self._used.items() if t > now}
        if expiry < now or nonce in self._used:
            return False
        self._used[nonce] = expiry
        return self._claim(f"{expiry}.{nonce}", now)

    def _claim(self, name: str, now: float) -> bool:
        """Marks a code used for all processes; False if another process redeemed it first."""
        if self._used_dir is None or not re.fullmatch(r"\d+\.[A-Za-z0-9_-]+", name):
            return True
        try:
            self._used_dir.mkdir(mode=0o700, exist_ok=True)
            os.close(os.open(self._used_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        except OSError:
            return True  # an unwritable directory: this process's memory still holds it
        for old in os.listdir(self._used_dir):
            stamp = old.partition(".")[0]
            if stamp.isdigit() and int(stamp) < now:
                with contextlib.suppress(OSError):
                    os.unlink(self._used_dir / old)
        return True
