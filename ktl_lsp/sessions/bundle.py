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

Speed (``bench/bench_bundle.py``): a session's frames are read and scanned once; the NDJSON
and the asciicast are encoded side by side in threads, deflated with ISA-L (zlib reads its
output) into temporary files and added to the zip as they are. The replay embeds the NDJSON
lines as they are, so its member is its own deflated head, the NDJSON member's deflate stream
(flushed to a byte boundary, not ended) and its own deflated tail: the frames are encoded and
deflated once for both. Import inflates the members it keeps with ISA-L and checks the others
in threads meanwhile. The layout is unchanged: bundles of either writer read the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import struct
import tempfile
import time
import types
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ktl_lsp import __version__
from ktl_lsp.sessions import ids
from ktl_lsp.sessions.errors import SessionError
from ktl_lsp.sessions.model import Frame, Session, SessionFilter, State
from ktl_lsp.sessions.redact import Redaction, Redactor
from ktl_lsp.sessions.scrub import Scrubber
from ktl_lsp.sessions.store import Store

fast_zlib: types.ModuleType = zlib
with contextlib.suppress(ImportError):  # a platform with no isal wheel keeps zlib
    # ISA-L: deflate streams zlib reads, made and read several times faster.
    from isal import isal_zlib as fast_zlib

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

    ``redaction`` defaults to the well-known secrets; the bundle records what it replaced.
    Each session's frames are read and redacted once; its NDJSON, asciicast and HTML are
    made from those frames side by side (threads: compression and hashing release the GIL)
    and added to the zip already compressed."""
    rules = redaction or Redaction.default()
    sessions = sessions_of(store, root_id)
    redacted: dict[str, int] = {}
    target = target.expanduser().absolute()
    if target.is_dir():
        target = target / f"{root_id}{EXTENSION}"
    if not target.parent.is_dir():
        raise BundleError(f"cannot write {target}: the folder {target.parent} does not exist")
    members: dict[str, str] = {}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        with (
            zipfile.ZipFile(tmp_name, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z,
            ThreadPoolExecutor(len(_STREAMED), thread_name_prefix="ktl-bundle") as pool,
        ):
            approvals: list[dict[str, Any]] = []
            root_recorded: dict[str, Any] = {}
            for s in sessions:
                recorded = _put_session(z, members, pool, store, s, rules.redactor(), redacted)
                if s.id == root_id:
                    root_recorded = recorded
                for a in s.meta.get("approvals") or []:
                    approvals.append({"sessionId": s.id, **a})
            plan_text = _plan_file(sessions[0], root_recorded.get("planFile"), rules.redactor())
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
    return BundleInfo(target, [s.id for s in sessions], target.stat().st_size, redacted)


#: The members made from a session's frames by worker threads, in the order they are written.
#: ``replay.html`` is not made apart: it holds ``frames.ndjson``'s bytes, deflated once.
_STREAMED = ("frames.ndjson", "session.cast")
REPLAY = "replay.html"


def _put_session(
    z: zipfile.ZipFile,
    members: dict[str, str],
    pool: ThreadPoolExecutor,
    store: Store,
    s: Session,
    redactor: Redactor,
    counts: dict[str, int],
) -> dict[str, Any]:
    """Adds one session's members; returns what its events recorded beyond the terminal."""
    from ktl_lsp.sessions.export._common import scrubbed_session
    from ktl_lsp.sessions.export.asciicast import asciicast_lines, first_size
    from ktl_lsp.sessions.export.html import Marks, html_head, html_tail, script_safe
    from ktl_lsp.sessions.export.ndjson import ndjson_lines

    # The title and the meta repeat the command line, which may carry a secret too.
    copy, names = scrubbed_session(s, redactor)
    _count(counts, names)
    base = f"sessions/{s.id}/"
    _put(z, members, base + "session.json", [_json(_record(copy))])
    # Resize frames are never redacted: the source's first size is the copy's.
    size, size_seq = first_size(store, s.id)
    marks = Marks(copy)  # the replay's frames besides the NDJSON's output
    head = html_head(copy)
    replay = _Digest(head)  # the replay's content: its head, the NDJSON, its tail
    feeds: list[queue.Queue[list[Frame] | None]] = [queue.Queue(FEED_BATCHES) for _ in _STREAMED]
    streams = (  # in _STREAMED's order
        script_safe(ndjson_lines(copy, marks.through(_drain(feeds[0])))),
        asciicast_lines(copy, _drain(feeds[1]), size, size_seq),
    )
    recorded: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        bodies = [stack.enter_context(tempfile.TemporaryFile(prefix="ktl-")) for _ in _STREAMED]
        packed = [
            pool.submit(_pack, streams[0], bodies[0], replay),
            pool.submit(_pack, streams[1], bodies[1]),
        ]
        try:
            for batch in _redacted_batches(store, s, redactor, counts, recorded):
                for feed, maker in zip(feeds, packed, strict=True):
                    _offer(feed, maker, batch)
        finally:
            for feed, maker in zip(feeds, packed, strict=True):
                _offer(feed, maker, None)
            done = [f.result() for f in packed]  # raises what a maker raised
        for name, body, member in zip(_STREAMED, bodies, done, strict=True):
            _put_packed(z, members, base + name, [body, member.end], member.digest)
        tail = html_tail(copy, marks.items, size)
        replay.update(tail)
        ends = (_deflated(head, final=False), _deflated(tail, final=True))
        _put_packed(z, members, base + REPLAY, [ends[0], bodies[0], ends[1]], replay)
    if "result" in recorded:
        _put(z, members, base + "result.json", [_json(recorded["result"])])
    return recorded


def _redacted_batches(
    store: Store,
    s: Session,
    redactor: Redactor,
    counts: dict[str, int],
    recorded: dict[str, Any],
) -> Iterator[list[Frame]]:
    """``s``'s frames with secrets replaced, in batches, in order: output as one stream (a
    secret split across two frames is found whole, as in exports: ``sessions/scrub.py``),
    input and events each on its own, recorded results as decoded strings; what its recorded
    events hold goes to ``recorded`` (``result``: diffs, findings; ``planFile``: the plan as
    run)."""
    from ktl_lsp.sessions.export._common import is_recorded, scrubbed_recorded

    scrubber = Scrubber(redactor.rules)
    batch: list[Frame] = []
    for frame in store.iter_frames(s.id):
        if is_recorded(frame):  # its strings scanned decoded, what was replaced counted
            frame, names = scrubbed_recorded(frame, redactor)
            _count(counts, names)
            recorded.update(json.loads(frame.data))
        batch += scrubber.push(frame)
        if len(batch) >= FRAME_BATCH:
            _count(counts, scrubber.take_found())
            yield batch
            batch = []
    batch += scrubber.flush()
    _count(counts, scrubber.take_found())
    if batch:
        yield batch


#: Frames handed to the member makers at a time.
FRAME_BATCH = 512


#: Batches read ahead of the slowest member maker, at most (a bound on memory).
FEED_BATCHES = 8


def _offer(
    feed: queue.Queue[list[Frame] | None], maker: Future[Any], item: list[Frame] | None
) -> None:
    """Hands ``item`` to a member maker, waiting while it is behind, unless it has stopped
    (failed: its error is raised by its future)."""
    while not maker.done():
        try:
            feed.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _drain(feed: queue.Queue[list[Frame] | None]) -> Iterator[Frame]:
    while (batch := feed.get()) is not None:
        yield from batch


class _Digest:
    """A member's SHA-256, CRC-32 and length, fed its content piece by piece."""

    def __init__(self, start: bytes = b"") -> None:
        self.sha256 = hashlib.sha256()
        self.crc = self.size = 0
        if start:
            self.update(start)

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.crc = fast_zlib.crc32(chunk, self.crc)
        self.size += len(chunk)


@dataclass
class _Packed:
    """A member :func:`_pack` deflated: its digest, and the end of its deflate stream."""

    digest: _Digest
    end: bytes


def _pack(pieces: Iterable[bytes], body: IO[bytes], *also: _Digest) -> _Packed:
    """Compresses (raw deflate) and hashes ``pieces`` into ``body`` (in a worker thread); the
    content is fed to ``also`` too (the replay's digest, for the NDJSON it embeds). ``body``
    ends flushed to a byte boundary with no final block, so other deflate streams can follow
    it (the replay's tail); the member itself ends with :attr:`_Packed.end`."""
    compressor = fast_zlib.compressobj(STREAM_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    digests = (_Digest(), *also)
    for chunk in _chunks(pieces):
        for d in digests:
            d.update(chunk)
        body.write(compressor.compress(chunk))
    body.write(compressor.flush(zlib.Z_SYNC_FLUSH))
    return _Packed(digests[0], compressor.flush(zlib.Z_FINISH))


def _deflated(data: bytes, final: bool) -> bytes:
    """``data`` as raw deflate on its own: ended (``final``) or flushed to a byte boundary."""
    compressor = fast_zlib.compressobj(STREAM_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    out: bytes = compressor.compress(data)
    end: bytes = compressor.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)
    return out + end


def _put_packed(
    z: zipfile.ZipFile,
    members: dict[str, str],
    name: str,
    parts: Iterable[bytes | IO[bytes]],
    digest: _Digest,
) -> None:
    """Adds a member of deflate streams (bytes, or files :func:`_pack` wrote) one after the
    other: written through as stored data, then its header is rewritten to say what it is
    (deflated, its real size and CRC). The header is zip64 both times, so it keeps its
    length; the central directory is written from the same ``ZipInfo`` when the zip closes."""
    info = zipfile.ZipInfo(name, date_time=time.localtime(time.time())[:6])
    info.compress_type = zipfile.ZIP_STORED
    with z.open(info, "w", force_zip64=True) as out:
        for part in parts:
            if isinstance(part, bytes):
                out.write(part)
            else:
                part.seek(0)
                shutil.copyfileobj(part, out, PUT_CHUNK)
    assert z.fp is not None
    end = z.fp.tell()
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size, info.CRC = digest.size, digest.crc
    z.fp.seek(info.header_offset)
    z.fp.write(info.FileHeader(zip64=True))
    z.fp.seek(end)
    members[name] = digest.sha256.hexdigest()


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
#: Compression level of the members made from frames: ISA-L's 2 is smaller than zlib's 1 and
#: several times faster (on base64 faster than ISA-L's 1 too); zlib's 2 without ISA-L.
STREAM_LEVEL = 2


def _chunks(pieces: Iterable[bytes | str]) -> Iterator[bytes]:
    """``pieces`` gathered into chunks of about ``PUT_CHUNK`` bytes."""
    buf: list[bytes] = []
    size = 0
    for piece in pieces:
        data = piece.encode() if isinstance(piece, str) else piece
        buf.append(data)
        size += len(data)
        if size >= PUT_CHUNK:
            yield b"".join(buf)
            buf.clear()
            size = 0
    if buf:
        yield b"".join(buf)


def _put(z: zipfile.ZipFile, members: dict[str, str], name: str, pieces: Iterable[Any]) -> None:
    digest = hashlib.sha256()
    with z.open(name, "w", force_zip64=True) as out:
        for chunk in _chunks(pieces):
            digest.update(chunk)
            out.write(chunk)
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
        infos = {i.filename: i for i in z.infolist()}
    # Every member is checked; only what the store needs is kept in memory, and the others
    # (replays, casts) are checked in worker threads meanwhile (inflating and hashing release
    # the GIL).
    data: dict[str, bytes] = {}
    with ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="ktl-bundle") as pool:
        checks = {
            name: pool.submit(_checked, path, infos.get(name), name, str(expected), False)
            for name, expected in members.items()
            if not name.endswith(KEPT)
        }
        for name, expected in members.items():
            if name.endswith(KEPT):
                body = _checked(path, infos.get(name), name, str(expected), True)
                assert body is not None
                data[name] = body
        for check in checks.values():
            check.result()
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
#: Threads checking the members import does not keep.
CHECK_THREADS = 2
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")


def _checked(
    path: Path, info: zipfile.ZipInfo | None, name: str, expected: str, keep: bool
) -> bytes | None:
    """Reads one member through its SHA-256 (its own file handle: members are checked side by
    side); its bytes when ``keep``. Raises ``BundleError`` naming it when it is missing,
    cannot be read or does not match."""
    if info is None:
        raise BundleError(f"bundle member {name} is missing")
    digest = hashlib.sha256()
    parts: list[bytes] = []
    try:
        for chunk in _member_chunks(path, info):
            digest.update(chunk)
            if keep:
                parts.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
        raise BundleError(f"bundle member {name} cannot be read: {exc}") from exc
    if digest.hexdigest() != expected:
        raise BundleError(f"tampered bundle: member {name} does not match its SHA-256")
    return b"".join(parts) if keep else None


def _member_chunks(path: Path, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A member's content: its raw data read from after its local header and inflated with
    ISA-L (deflated) or as it is (stored); other methods through ``zipfile``."""
    if info.compress_type not in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED) or info.flag_bits & 1:
        with zipfile.ZipFile(path) as z, z.open(info) as member:
            while chunk := member.read(READ_CHUNK):
                yield chunk
        return
    with path.open("rb") as f:
        f.seek(info.header_offset)
        head = f.read(_LOCAL_HEADER.size)
        if len(head) != _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile("bad local file header")
        fields = _LOCAL_HEADER.unpack(head)
        f.seek(fields[-2] + fields[-1], os.SEEK_CUR)  # the name and the extra field
        inflate = (
            fast_zlib.decompressobj(-zlib.MAX_WBITS)
            if info.compress_type == zipfile.ZIP_DEFLATED
            else None
        )
        left = info.compress_size
        while left > 0:
            raw = f.read(min(READ_CHUNK, left))
            if not raw:
                raise EOFError("truncated")
            left -= len(raw)
            yield inflate.decompress(raw) if inflate is not None else raw
        if inflate is not None:
            yield inflate.flush()
            if not inflate.eof:
                raise EOFError("its compressed data ends early")


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
