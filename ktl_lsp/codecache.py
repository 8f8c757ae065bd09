"""Keeps the code that attrs and cattrs generate at start-up, as ``__pycache__`` keeps modules'.

lsprotocol defines ~570 attrs classes (and ktl-lsp ~100 dataclasses, whose methods are made the
same way). attrs writes each class's ``__init__``, ``__eq__``, ... as
source text and compiles it while the module loads: ~250 ms of every start on a small machine,
half of importing lsprotocol and a third of the time to answer ``initialize``. cattrs does the
same for each message type the first time one arrives. The text is identical from one start to
the next, so the compiled code objects are kept in a file under the user's cache directory.

An entry is found by a digest of everything ``compile()`` was given (text, file name, mode,
flags), so a changed library or Python misses and compiles as before; nothing is ever run that
was not compiled from the very same text. The file is rewritten with exactly what a start used,
so it does not grow with upgrades. Hashable attrs classes put the process's random hash seed in
their code, so they miss on every start; a few such misses do not rewrite the file, a new name
does. ``KTL_LSP_CODE_CACHE=0`` turns it off.

This must run before lsprotocol is imported, so it imports nothing heavy itself.
"""

from __future__ import annotations
import __future__

import builtins
import contextlib
import hashlib
import importlib.util
import marshal
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

#: Bump when the file's layout changes.
FORMAT = b"ktl-lsp code cache 2\n"
#: Size of the checksum after the header: a file damaged on disk is rebuilt, never run.
SUM_SIZE = 32
#: Misses of already known file names (text changed) tolerated before the file is rewritten.
CHANGED_ALLOWANCE = 16
#: Modules whose ``compile`` calls go through the cache (looked up as a module global first).
PATCHED = ("attr._make", "cattrs.gen")
#: Modules that ``exec`` generated source text: dataclasses writes ``__init__``, ``__repr__``,
#: ``__eq__``, ... for each class that way (~100 of ours load before ``initialize`` is answered).
PATCHED_EXEC = ("dataclasses",)


def cache_path() -> Path | None:
    setting = os.environ.get("KTL_LSP_CODE_CACHE", "")
    if setting.lower() in ("0", "off", "false", "no"):
        return None
    if setting and setting != "1":
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base).expanduser() if base else Path.home() / ".cache"
    except RuntimeError:  # no home directory at all: start without the cache
        return None
    return root / "ktl-lsp" / f"codegen.{sys.implementation.cache_tag}.bin"


def _future_flags(module: ModuleType) -> int:
    """The ``from __future__`` flags a plain ``compile()`` call in ``module`` inherits."""
    flags = 0
    for value in vars(module).values():
        if isinstance(value, __future__._Feature):
            flags |= value.compiler_flag
    return flags


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=SUM_SIZE).digest()


class CodeCache:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.loaded: dict[bytes, CodeType] = {}
        self.used: dict[bytes, CodeType] = {}
        self.hits = 0
        self.misses = 0
        self.error: str | None = None
        #: The file name attrs/cattrs gave the last code compiled afresh (to tell what missed).
        self.last_missed: str | None = None
        self.known_files: set[str] = set()
        self._new_files = 0
        self._changed = 0
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._patched: list[tuple[ModuleType, str, object]] = []

    # -- file -----------------------------------------------------------------------------

    def load(self) -> None:
        if self.path is None:
            return
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self.error = f"cannot read {self.path}: {exc.strerror}"
            return
        header = FORMAT + importlib.util.MAGIC_NUMBER
        if not data.startswith(header):
            return  # another Python or an older layout: rebuilt on save
        checksum = data[len(header) : len(header) + SUM_SIZE]
        payload = data[len(header) + SUM_SIZE :]
        # marshal trusts its input (as the interpreter trusts .pyc files): check it first.
        if checksum != _checksum(payload):
            self.error = f"{self.path} was damaged; it is rebuilt"
            return
        try:
            table = marshal.loads(payload)
        except (ValueError, EOFError, TypeError):
            self.error = f"{self.path} was damaged; it is rebuilt"
            return
        if isinstance(table, dict):
            self.loaded = {
                k: v for k, v in table.items() if isinstance(k, bytes) and isinstance(v, CodeType)
            }
            self.known_files = {code.co_filename for code in self.loaded.values()}

    def save(self) -> bool:
        """Writes what this process used, if it compiled anything new. Never raises.

        Called from a thread after ``initialized`` and again at exit: one write at a time."""
        if self.path is None:
            return False
        with self._save_lock:
            with self._lock:
                if not self._new_files and self._changed <= CHANGED_ALLOWANCE:
                    return False
                table = dict(self.used)
                self._new_files = self._changed = 0
                self.known_files = {code.co_filename for code in table.values()}
            return self._write(self.path, table)

    def _write(self, path: Path, table: dict[bytes, CodeType]) -> bool:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            payload = marshal.dumps(table)
            with open(tmp, "wb") as fh:
                fh.write(FORMAT + importlib.util.MAGIC_NUMBER + _checksum(payload) + payload)
            os.replace(tmp, path)  # readers see the old file or the new one, never half
        except OSError as exc:
            self.error = f"cannot write {path}: {exc.strerror}"
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        return True

    # -- compile ----------------------------------------------------------------------------

    def compiler(self, module: ModuleType) -> Callable[..., Any]:
        inherited = _future_flags(module)
        real = builtins.compile

        def compile(source: Any, filename: Any, mode: str, *args: Any, **kwargs: Any) -> Any:
            if args or kwargs or not isinstance(source, str) or not isinstance(filename, str):
                return real(source, filename, mode, *args, **kwargs)
            h = hashlib.blake2b(digest_size=16)
            for part in (filename, mode, str(inherited), source):
                h.update(part.encode("utf-8", "surrogatepass"))
                h.update(b"\0")
            key = h.digest()
            code = self.loaded.get(key)
            with self._lock:
                if code is None:
                    code = real(source, filename, mode, inherited, True)
                    self.misses += 1
                    self.last_missed = filename
                    if filename in self.known_files:
                        self._changed += 1
                    else:
                        self._new_files += 1
                else:
                    self.hits += 1
                self.used[key] = code
            return code

        return compile

    def executor(self, module: ModuleType) -> Callable[..., Any]:
        """``exec`` for ``module``: source text is compiled through the cache, then run as before."""
        compile = self.compiler(module)
        real = builtins.exec

        def exec(source: Any, globals: Any = None, locals: Any = None, /, **kwargs: Any) -> None:
            if isinstance(source, str):
                source = compile(source, "<string>", "exec")
            real(source, globals, locals, **kwargs)

        return exec

    def install(self) -> None:
        for names, attr, make in (
            (PATCHED, "compile", self.compiler),
            (PATCHED_EXEC, "exec", self.executor),
        ):
            for name in names:
                try:
                    module = importlib.import_module(name)
                except ImportError:
                    continue
                self._patched.append((module, attr, vars(module).get(attr)))
                setattr(module, attr, make(module))

    def uninstall(self) -> None:
        for module, attr, before in self._patched:
            if before is None:
                vars(module).pop(attr, None)
            else:
                setattr(module, attr, before)
        self._patched.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "enabled": self.path is not None,
            "hits": self.hits,
            "misses": self.misses,
            "lastMissed": self.last_missed,
            "error": self.error,
        }


_active: CodeCache | None = None


def start() -> CodeCache:
    """Loads the cache and routes attrs', cattrs' and dataclasses' code through it (once per process)."""
    global _active
    if _active is None:
        _active = CodeCache(cache_path())
        _active.load()
        if _active.path is not None:
            _active.install()
    return _active


def active() -> CodeCache | None:
    return _active


def stats() -> dict[str, Any]:
    """What ``ktl.server.stats`` reports (a process that never started the cache: disabled)."""
    return (_active or CodeCache(None)).stats()
