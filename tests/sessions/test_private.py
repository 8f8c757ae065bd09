"""The store, its WAL/SHM, exports and the directories made for them are owner-only,
whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktl_lsp.gateway.auth import load_or_create_token
from ktl_lsp.sessions import private
from ktl_lsp.sessions.export import export_to_path, exports_dir
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import Frame, FrameType, Session, State
from tests.needs import unavailable


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _record(manager: SessionManager, sid: str) -> None:
    store = manager.store
    assert store is not None
    store.save_session(Session(id=sid, kind="pty", title="t", state=State.DONE, last_seq=1))
    store.append(Frame(sid, 1, 1, FrameType.OUTPUT, b"a secret the user saw\r\n"))
    store.flush_sync()


@pytest.mark.usefixtures("umask_022")
def test_a_new_store_and_its_exports_are_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "state" / "ktl-lsp"
    db = state / "sessions.db"
    notices: list[str] = []
    manager = SessionManager.open(db, on_notice=notices.append)
    try:
        _record(manager, "sid00000000000001")
        assert manager.store is not None
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()
        for f in (db, wal, shm):
            assert mode(f) == 0o600, f
        for d in (tmp_path / "state", state):
            assert mode(d) == 0o700, d
        # The default exports folder, and an export anywhere.
        default = exports_dir(manager.store)
        assert default == state / "exports" and mode(default) == 0o700
        for target in (default, tmp_path):
            out = export_to_path(manager.store, "sid00000000000001", "html", target)
            assert mode(out) == 0o600, out
        # The gateway token beside the store, in a folder it makes itself.
        load_or_create_token(tmp_path / "other" / "sessions.db")
        assert mode(tmp_path / "other") == 0o700
        assert mode(tmp_path / "other" / "sessions.db.gateway-token") == 0o600
    finally:
        manager.close()
    assert notices == []


@pytest.mark.usefixtures("umask_022")
def test_an_existing_readable_store_is_tightened_on_open(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    manager = SessionManager.open(db)
    _record(manager, "sid00000000000002")
    manager.close()
    for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if f.exists():
            os.chmod(f, 0o644)
    # A folder that exists is left as it is (it may be shared on purpose).
    os.chmod(tmp_path, 0o755)
    notices: list[str] = []
    manager = SessionManager.open(db, on_notice=notices.append)
    try:
        assert mode(db) == 0o600 and mode(tmp_path) == 0o755
        _record(manager, "sid00000000000003")
        assert mode(Path(f"{db}-wal")) == 0o600 and mode(Path(f"{db}-shm")) == 0o600
    finally:
        manager.close()
    assert notices == []


@pytest.mark.usefixtures("umask_022")
def test_an_exports_folder_made_wider_is_tightened(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "sessions.db")
    try:
        _record(manager, "sid00000000000004")
        assert manager.store is not None
        plain = tmp_path / "exports"
        plain.mkdir()  # as a caller without exports_dir() makes it
        assert mode(plain) == 0o755
        out = export_to_path(manager.store, "sid00000000000004", "ndjson", plain)
        assert mode(plain) == 0o700 and mode(out) == 0o600
    finally:
        manager.close()


def test_tighten_says_what_it_could_not_do(tmp_path: Path) -> None:
    mine = tmp_path / "f"
    mine.write_text("x")
    os.chmod(mine, 0o664)
    assert private.tighten([mine, tmp_path / "missing"]) is None
    assert mode(mine) == 0o600
    proc = Path("/proc/self/status")  # 0444, and no one may change it
    if not proc.exists():
        pytest.skip("no /proc")
    message = private.tighten([proc])
    assert message is not None and str(proc) in message and "other local users" in message


@pytest.mark.usefixtures("umask_022")
def test_another_local_user_cannot_read_the_store_or_an_export(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """As the attack was made: user ``nobody`` tries to read what the user recorded."""
    import shutil
    import subprocess
    import tempfile

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        unavailable("needs root and setpriv (util-linux) to act as another user")
    # A folder anyone may enter (pytest's own tmp folders are 0700): only the files' modes stand.
    open_dir = Path(tempfile.mkdtemp(prefix="ktl-other-user-"))
    try:
        open_dir.chmod(0o755)
        manager = SessionManager.open(open_dir / "state" / "sessions.db")
        try:
            _record(manager, "dnci000000000001")
            assert manager.store is not None
            export = export_to_path(manager.store, "dnci000000000001", "asciicast", open_dir)
        finally:
            manager.close()
        as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "cat"]
        for target in (open_dir / "state" / "sessions.db", export):
            done = subprocess.run([*as_nobody, str(target)], capture_output=True, timeout=30)
            assert done.returncode != 0 and b"Permission denied" in done.stderr, target
            assert b"a secret the user saw" not in done.stdout
        # and as the user, the same files are readable: the refusal is the modes, not the path
        assert b"a secret the user saw" in export.read_bytes()
    finally:
        shutil.rmtree(open_dir, ignore_errors=True)
