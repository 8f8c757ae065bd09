"""Who started a session and from where, recorded in its meta when it is created.

- who: ``user`` (the OS user) and ``host``; a session started through the gateway also has
  ``principal``, the name of the token its request carried (``default`` for the store's
  token); agents' calls add ``requester`` = ``agent:<client>`` (``agents/record.py``).
- where: ``workspace`` (the editor's folder holding the work, else the git work tree, else
  the directory) and ``git``: ``{root, remote, branch, commit, dirty}`` of the work's directory
  (the directory of ``meta.uri`` for a file's work, else ``meta.cwd``). The remote URL keeps no
  credentials (``https://user:token@host/...`` is recorded as ``https://host/...``).

Git runs in a worker thread with a short timeout, never on the event loop; its answer is
cached per directory for a few seconds, so a burst of sessions costs one run. A session whose
directory is not cached yet is recorded at once and completed when git answers, asked
``DELAY_S`` after the session starts so a short command does not share the CPU with git, or at
once when ``settle`` waits for it (``SessionManager.flush`` calls it). Against what (context, server, namespace,
release, chart) is the work's own meta (``k8s/sessions.py``, plans); why is ``meta.approvals``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ktl_lsp.sessions.model import Session

#: Where an MCP request's ASGI scope state holds the name of the token it carried.
REQUEST_PRINCIPAL = "ktl_lsp.principal"
#: The name of a token configured without one (the store's token, ``serve --token``).
DEFAULT_TOKEN_NAME = "default"
GIT_TIMEOUT_S = 2.0
CACHE_S = 5.0
#: Git is asked this long after a session starts (or at once when something waits for the
#: record): a short command runs and answers without three git processes beside it.
DELAY_S = 0.1

GitInfo = dict[str, Any]


def os_user() -> str | None:
    user = os.environ.get("USER") or os.environ.get("USERNAME")
    if not user:
        with contextlib.suppress(Exception):
            user = getpass.getuser()
    return user or None


@functools.cache
def host_name() -> str:
    return socket.gethostname()


def safe_url(url: str) -> str:
    """``url`` without what may authenticate: user and password, query and fragment. An
    scp-like git address (``git@host:org/repo``) names a user and no secret: kept."""
    url = url.strip()
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    with contextlib.suppress(ValueError):
        if parts.port is not None:
            host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, unquote(parts.path), "", ""))


def _git(args: list[str], cwd: str) -> subprocess.Popen[bytes] | None:
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",  # status must not take the index lock from the user's git
        "LC_ALL": "C",
    }
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def _output(proc: subprocess.Popen[bytes] | None, deadline: float) -> str | None:
    if proc is None:
        return None
    try:
        out, _ = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()  # not communicate(): a child git left behind may hold the pipe open
        if proc.stdout is not None:
            proc.stdout.close()
        return None
    if proc.returncode != 0:
        return None
    return out.decode("utf-8", "replace")


def read_git(directory: str, timeout_s: float = GIT_TIMEOUT_S) -> GitInfo | None:
    """The work tree holding ``directory``: root, remote (credentials stripped), branch,
    commit and whether tracked files differ from the commit; None outside a repository, or
    when git is missing or too slow. Blocking: run it in a thread. The three questions are
    asked at once (each answers for the whole work tree from any directory in it): a session's
    record waits for the slowest, not for the sum."""
    if not os.path.isdir(directory):
        return None
    deadline = time.monotonic() + timeout_s
    asked = [
        _git(["rev-parse", "--show-toplevel"], directory),
        _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], directory),
        _git(["config", "--get-regexp", r"^remote\..*\.url$"], directory),
    ]
    top, status, remotes = (_output(proc, deadline) for proc in asked)
    if not top or not top.strip():
        return None
    root = top.strip()
    info: GitInfo = {"root": root}
    upstream_remote = None
    if status is not None:
        dirty = False
        for line in status.splitlines():
            if line.startswith("# branch.oid "):
                oid = line.split(" ", 2)[2]
                if oid != "(initial)":
                    info["commit"] = oid
            elif line.startswith("# branch.head "):
                head = line.split(" ", 2)[2]
                if head != "(detached)":
                    info["branch"] = head
            elif line.startswith("# branch.upstream "):
                upstream_remote = line.split(" ", 2)[2].partition("/")[0]
            elif line and not line.startswith("#"):
                dirty = True
        info["dirty"] = dirty
    urls: dict[str, str] = {}
    for line in (remotes or "").splitlines():
        key, _, url = line.partition(" ")
        urls[key.removeprefix("remote.").removesuffix(".url")] = url
    name = next((n for n in (upstream_remote, "origin") if n in urls), next(iter(urls), None))
    if name is not None:
        info["remote"] = safe_url(urls[name])
    return info


def _place(meta: dict[str, Any]) -> str | None:
    """The directory a session's work is about: its file's, else its working directory."""
    uri = meta.get("uri")
    if isinstance(uri, str) and uri.startswith("file://"):
        return str(Path(unquote(urlsplit(uri).path)).parent)
    cwd = meta.get("cwd")
    return cwd if isinstance(cwd, str) and cwd else None


def _inside(path: str, root: str) -> bool:
    root = root.rstrip(os.sep) or os.sep
    return path == root or path.startswith(root + os.sep) or root == os.sep


class Provenance:
    """Stamps sessions with who and where (held by the ``SessionManager``)."""

    def __init__(
        self, cache_s: float = CACHE_S, timeout_s: float = GIT_TIMEOUT_S, delay_s: float = DELAY_S
    ) -> None:
        self.cache_s = cache_s
        self.timeout_s = timeout_s
        self.delay_s = delay_s
        self._hurry = asyncio.Event()
        #: The editor's workspace folders (set by the language server).
        self.roots: Callable[[], Iterable[str | os.PathLike[str]]] = tuple
        self._cache: dict[str, tuple[float, GitInfo | None]] = {}
        self._reading: dict[str, asyncio.Task[GitInfo | None]] = {}
        self._pending: set[asyncio.Task[None]] = set()

    def stamp(self, session: Session, saved: Callable[[Session], None]) -> None:
        """Records who and where in ``session.meta`` (fields already there are kept); git's
        part now if it is cached, else when git answers (then ``saved(session)``)."""
        meta = session.meta
        user = os_user()
        if user:
            meta.setdefault("user", user)
        meta.setdefault("host", host_name())
        place = _place(meta)
        if place is None:
            return
        folder = self._folder(place)
        if folder is not None:
            meta.setdefault("workspace", folder)
        cached = self._cache.get(place)
        if cached is not None and time.monotonic() - cached[0] < self.cache_s:
            self._apply(meta, place, cached[1])
            return
        task = asyncio.get_running_loop().create_task(self._complete(session, place, saved))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Waits until every session stamped so far has its git part (bounded by the timeout);
        git is asked at once."""
        self._hurry.set()
        try:
            while self._pending:
                await asyncio.gather(*list(self._pending), return_exceptions=True)
        finally:
            self._hurry.clear()

    def close(self) -> None:
        for task in list(self._pending):
            task.cancel()

    def _folder(self, place: str) -> str | None:
        try:
            roots = [os.path.normpath(r) for r in self.roots()]
        except Exception:
            return None
        inside = [r for r in roots if _inside(place, r)]
        return max(inside, key=len) if inside else None

    async def _complete(
        self, session: Session, place: str, saved: Callable[[Session], None]
    ) -> None:
        reading = self._reading.get(place)
        if reading is None:
            reading = asyncio.get_running_loop().create_task(self._read(place))
            self._reading[place] = reading
        info = await asyncio.shield(reading)
        self._apply(session.meta, place, info)
        saved(session)

    async def _read(self, place: str) -> GitInfo | None:
        try:
            if not self._hurry.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), self.delay_s)
            info = await asyncio.to_thread(read_git, place, self.timeout_s)
            now = time.monotonic()
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self.cache_s}
            self._cache[place] = (now, info)
            return info
        finally:
            self._reading.pop(place, None)

    @staticmethod
    def _apply(meta: dict[str, Any], place: str, info: GitInfo | None) -> None:
        if info is not None:
            meta.setdefault("git", dict(info))
        meta.setdefault("workspace", info["root"] if info is not None else place)
