"""Session bundles: one ``.ktlbundle`` zip with a session and its children, to attach and replay.

A bundle holds, per session, ``sessions/<id>/session.json`` (its fields), ``frames.ndjson``
(every frame, lossless), ``session.cast`` (asciicast), ``replay.html`` (the single-file
replay, which plays with no server) and, when the work reported one, ``result.json`` (an
apply's resources and diffs, a diff's text, verify's findings); for a plan, ``plan.yaml`` (the
plan file as the run read it); ``approvals.json``
(every question and answer); and ``manifest.json`` with the SHA-256 of every other member.
Well-known secrets are redacted in the output and input frames and in the metadata before
anything is written (the store keeps what it recorded). :func:`import_bundle` checks every hash
first and refuses a bundle that does not match, naming the member.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktl_lsp import __version__
from ktl_lsp.sessions import ids
from ktl_lsp.sessions.errors import SessionError
from ktl_lsp.sessions.model import Frame, FrameType, Session, SessionFilter, State
from ktl_lsp.sessions.redact import Redaction, Redactor
from ktl_lsp.sessions.store import Store

#: The newest bundle layout this version reads and writes.
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
EXTENSION = ".ktlbundle"
#: Children of children are bundled too, to this depth.
MAX_DEPTH = 4
CHILDREN_LIMIT = 10_000


class BundleError(SessionError):
    """A bundle that cannot be written or read; the message names the member or the reason."""


@dataclass
class BundleInfo:
    path: Path
    sessions: list[str]
    bytes: int
    redacted: dict[str, int] = field(default_factory=dict)

    def to_lsp(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sessions": self.sessions,
            "bytes": self.bytes,
            "redacted": self.redacted,
        }


# -- writing ---------------------------------------------------------------------------------
def sessions_of(store: Store, root_id: str) -> list[Session]:
    """The session and its children (a plan's nodes), parents first."""
    root = store.get_session(root_id)
    if root is None:
        raise BundleError(f"no session {root_id} in the store")
    out, level = [root], [root]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for parent in level
            for child in store.list_sessions(
                SessionFilter(parent_id=parent.id, limit=CHILDREN_LIMIT)
            )
        ]
        if not level:
            break
        out.extend(level)
    return out


def write_bundle(
    store: Store,
    root_id: str,
    target: Path,
    redaction: Redaction | None = None,
    exit_code: int | None = None,
) -> BundleInfo:
    """Writes the bundle of ``root_id`` to ``target`` atomically (a temp file, then rename).

    ``redaction`` defaults to the well-known secrets; the bundle records what it replaced."""
    from ktl_lsp.sessions.export.asciicast import iter_asciicast
    from ktl_lsp.sessions.export.html import iter_html
    from ktl_lsp.sessions.export.ndjson import iter_ndjson

    rules = redaction or Redaction.default()
    sessions = sessions_of(store, root_id)
    redacted: dict[str, int] = {}
    target = target.expanduser().absolute()
    if target.is_dir():
        target = target / f"{root_id}{EXTENSION}"
    if not target.parent.is_dir():
        raise BundleError(f"cannot write {target}: the folder {target.parent} does not exist")
    with tempfile.TemporaryDirectory(prefix="ktl-bundle-") as tmp:
        # A private copy with secrets replaced: every export below reads from it.
        clean = Store(Path(tmp) / "bundle.db", index_output=False)  # read once, never searched
        clean.open()
        try:
            recorded: dict[str, dict[str, Any]] = {}
            for s in sessions:
                recorded[s.id] = _copy_redacted(store, clean, s, rules.redactor(), redacted)
            clean.flush_sync()
            members: dict[str, str] = {}
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
            )
            os.close(fd)
            try:
                with zipfile.ZipFile(tmp_name, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
                    approvals: list[dict[str, Any]] = []
                    for s in sessions:
                        copy = clean.get_session(s.id)
                        assert copy is not None
                        base = f"sessions/{s.id}/"
                        _put(z, members, base + "session.json", [_json(_record(copy))])
                        _put(z, members, base + "frames.ndjson", iter_ndjson(clean, copy))
                        _put(z, members, base + "session.cast", iter_asciicast(clean, copy))
                        _put(z, members, base + "replay.html", iter_html(clean, copy))
                        if "result" in recorded[s.id]:
                            result = _json(recorded[s.id]["result"])
                            _put(z, members, base + "result.json", [result])
                        for a in copy.meta.get("approvals") or []:
                            approvals.append({"sessionId": s.id, **a})
                    plan_text = _plan_file(
                        sessions[0], recorded[root_id].get("planFile"), rules.redactor()
                    )
                    if plan_text is not None:
                        _put(z, members, "plan.yaml", [plan_text])
                    _put(z, members, "approvals.json", [_json(approvals)])
                    manifest = {
                        "ktlBundle": BUNDLE_VERSION,
                        "producer": f"ktl-lsp {__version__}",
                        "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "root": root_id,
                        "sessions": [s.id for s in sessions],
                        "redacted": redacted,
                        "members": members,
                    }
                    if exit_code is not None:
                        manifest["exitCode"] = exit_code
                    z.writestr(MANIFEST, _json(manifest))
                os.replace(tmp_name, target)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        finally:
            clean.close()
    return BundleInfo(target, [s.id for s in sessions], target.stat().st_size, redacted)


def _copy_redacted(
    src: Store, dst: Store, s: Session, redactor: Redactor, counts: dict[str, int]
) -> dict[str, Any]:
    """Copies ``s`` and its frames with secrets replaced; returns what its events recorded
    beyond the terminal (``result``: diffs, findings; ``planFile``: the plan as run)."""
    from ktl_lsp.sessions.export._common import is_recorded, scrubbed_recorded, scrubbed_session

    # The title and the meta repeat the command line, which may carry a secret too.
    copy, names = scrubbed_session(s, redactor)
    _count(counts, names)
    dst.save_session(copy)
    recorded: dict[str, Any] = {}
    for frame in src.iter_frames(s.id):
        if frame.type in (FrameType.OUTPUT, FrameType.INPUT):
            out = redactor.scan(frame.data)
            if out.names:
                _count(counts, out.names)
                frame = Frame(frame.session_id, frame.seq, frame.ts_ns, frame.type, out.data)
        elif is_recorded(frame):
            frame, names = scrubbed_recorded(frame, redactor)
            _count(counts, names)
            recorded.update(json.loads(frame.data))
        dst.append(frame)
    return recorded


def _count(counts: dict[str, int], names: Iterable[str]) -> None:
    for n in names:
        counts[n] = counts.get(n, 0) + 1


def _plan_file(root: Session, recorded: Any, redactor: Redactor) -> bytes | None:
    """The plan file as the run read it (recorded at its start), else as it is now."""
    if root.kind != "plan":
        return None
    if isinstance(recorded, dict) and isinstance(recorded.get("text"), str):
        return str(recorded["text"]).encode()  # already redacted with the event
    source = root.meta.get("file")
    if not isinstance(source, str):
        return None
    try:
        return redactor.scan(Path(source).read_bytes()).data
    except OSError:
        return None


#: Pieces are gathered to about this size before hashing and compressing (fewer calls).
PUT_CHUNK = 1 << 20


def _put(z: zipfile.ZipFile, members: dict[str, str], name: str, pieces: Iterable[Any]) -> None:
    digest = hashlib.sha256()
    with z.open(name, "w", force_zip64=True) as out:

        def write(data: bytes) -> None:
            digest.update(data)
            out.write(data)

        buf: list[bytes] = []
        size = 0
        for piece in pieces:
            data = piece.encode() if isinstance(piece, str) else piece
            buf.append(data)
            size += len(data)
            if size >= PUT_CHUNK:
                write(b"".join(buf))
                buf.clear()
                size = 0
        if buf:
            write(b"".join(buf))
    members[name] = digest.hexdigest()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True).encode() + b"\n"


def _record(s: Session) -> dict[str, Any]:
    out = dict(s.__dict__)
    out["state"] = str(s.state)
    return out


# -- reading ---------------------------------------------------------------------------------
@dataclass
class Loaded:
    """A checked bundle's sessions (with their frames) ready to store."""

    manifest: dict[str, Any]
    sessions: list[tuple[Session, list[Frame]]]


def read_bundle(path: Path) -> Loaded:
    """Opens and checks a bundle: version, every member against its SHA-256, nothing extra."""
    from ktl_lsp.sessions.export.ndjson import read_ndjson

    try:
        z = zipfile.ZipFile(path)
    except FileNotFoundError as exc:
        raise BundleError(f"no bundle at {path}") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{path} is not a ktl bundle (corrupt or truncated): {exc}") from exc
    with z:
        try:
            manifest = json.loads(z.read(MANIFEST))
        except KeyError as exc:
            raise BundleError(f"{path} is not a ktl bundle: it has no {MANIFEST}") from exc
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise BundleError(f"{path}: {MANIFEST} cannot be read: {exc}") from exc
        version = manifest.get("ktlBundle") if isinstance(manifest, dict) else None
        if not isinstance(version, int):
            raise BundleError(f"{path}: {MANIFEST} does not say which bundle version it is")
        if version > BUNDLE_VERSION:
            raise BundleError(
                f"{path} is bundle version {version}, made by a newer ktl-lsp "
                f"({manifest.get('producer')}); this one reads version {BUNDLE_VERSION}"
            )
        members = manifest.get("members")
        if not isinstance(members, dict):
            raise BundleError(f"{path}: {MANIFEST} lists no members")
        names = set(z.namelist()) - {MANIFEST}
        for extra in sorted(names - set(members)):
            raise BundleError(f"tampered bundle: member {extra} is not in the manifest")
        # Only what the store needs is kept in memory: replays and casts are hashed as read.
        data: dict[str, bytes] = {}
        for name, expected in members.items():
            body = _checked(z, name, str(expected), name.endswith(KEPT))
            if body is not None:
                data[name] = body
    loaded: list[tuple[Session, list[Frame]]] = []
    for sid in manifest.get("sessions") or []:
        base = f"sessions/{sid}/"
        try:
            record = json.loads(data[base + "session.json"])
            session = _session_from(record)
            frames = list(read_ndjson(data[base + "frames.ndjson"].splitlines()))
        except (KeyError, ValueError, TypeError) as exc:
            raise BundleError(f"bundle member {base} is not a session: {exc}") from exc
        loaded.append((session, frames))
    return Loaded(manifest, loaded)


#: Members read into memory on import; the others are only checked.
KEPT = ("/session.json", "/frames.ndjson")
READ_CHUNK = 1 << 20


def _checked(z: zipfile.ZipFile, name: str, expected: str, keep: bool) -> bytes | None:
    """Reads one member through its SHA-256; its bytes when ``keep``. Raises ``BundleError``
    naming it when it is missing, cannot be read or does not match."""
    digest = hashlib.sha256()
    parts: list[bytes] = []
    try:
        with z.open(name) as member:
            while chunk := member.read(READ_CHUNK):
                digest.update(chunk)
                if keep:
                    parts.append(chunk)
    except KeyError as exc:
        raise BundleError(f"bundle member {name} is missing") from exc
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError(f"bundle member {name} cannot be read: {exc}") from exc
    if digest.hexdigest() != expected:
        raise BundleError(f"tampered bundle: member {name} does not match its SHA-256")
    return b"".join(parts) if keep else None


def _session_from(record: dict[str, Any]) -> Session:
    fields = {k: v for k, v in record.items() if k in Session.__dataclass_fields__}
    fields["state"] = State(fields.get("state", "done"))
    return Session(**fields)


def store_bundle(store: Store, loaded: Loaded, source: str) -> list[str]:
    """Writes a checked bundle's sessions to ``store``, marked imported; new ids where the
    originals are taken (parents follow). Returns the ids as stored, root first."""
    renamed: dict[str, str] = {}
    for session, _ in loaded.sessions:
        if store.get_session(session.id) is not None:
            renamed[session.id] = ids.new_id()
    out: list[str] = []
    imported_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for session, frames in loaded.sessions:
        original = session.id
        session.id = renamed.get(original, original)
        if session.parent_id is not None:
            session.parent_id = renamed.get(session.parent_id, session.parent_id)
        if session.state is State.RUNNING:
            session.state = State.INTERRUPTED  # it was still running when bundled
        session.meta["imported"] = {
            "from": source,
            "at": imported_at,
            "originalId": original,
            "producer": loaded.manifest.get("producer"),
        }
        session.pinned = False
        store.save_session(session)
        for f in frames:
            store.append(Frame(session.id, f.seq, f.ts_ns, f.type, f.data))
        out.append(session.id)
    store.flush_sync()
    return out
