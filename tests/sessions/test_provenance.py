"""Who and where a session was started from: real git repositories, real processes, a real
store; git that hangs never holds up the loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from ktl_lsp.sessions.manager import RunSpec, SessionManager
from ktl_lsp.sessions.provenance import read_git, safe_url

SECRET = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()


def make_repo(path: Path, remote: str | None = None) -> str:
    """A repository with one commit on ``main``; returns the commit."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "dev@example.com")
    git(path, "config", "user.name", "Dev")
    (path / "app.yaml").write_text("kind: ConfigMap\n")
    git(path, "add", "app.yaml")
    git(path, "commit", "-qm", "first")
    if remote is not None:
        git(path, "remote", "add", "origin", remote)
    return git(path, "rev-parse", "HEAD")


def test_safe_url_keeps_no_credentials() -> None:
    assert safe_url(f"https://bob:{SECRET}@github.com/org/repo.git") == (
        "https://github.com/org/repo.git"
    )
    assert safe_url(f"https://{SECRET}@example.com:8443/x?token={SECRET}#frag") == (
        "https://example.com:8443/x"
    )
    assert safe_url("https://[::1]:6443") == "https://[::1]:6443"
    assert safe_url("git@github.com:org/repo.git") == "git@github.com:org/repo.git"


def test_read_git_of_a_real_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    commit = make_repo(repo, f"https://bob:{SECRET}@github.com/org/repo.git")
    (repo / "sub").mkdir()
    info = read_git(str(repo / "sub"))
    assert info == {
        "root": str(repo),
        "commit": commit,
        "branch": "main",
        "dirty": False,
        "remote": "https://github.com/org/repo.git",
    }
    (repo / "app.yaml").write_text("kind: Secret\n")
    assert (read_git(str(repo)) or {})["dirty"] is True
    git(repo, "checkout", "-q", "--detach")
    detached = read_git(str(repo)) or {}
    assert "branch" not in detached and detached["commit"] == commit
    # the upstream's remote is the one recorded
    git(repo, "checkout", "-q", "main")
    git(repo, "remote", "add", "fork", "https://example.com/fork.git")
    git(repo, "config", "branch.main.remote", "fork")
    git(repo, "config", "branch.main.merge", "refs/heads/main")
    git(repo, "update-ref", "refs/remotes/fork/main", commit)
    assert (read_git(str(repo)) or {})["remote"] == "https://example.com/fork.git"
    outside = tmp_path / "plain"
    outside.mkdir()
    assert read_git(str(outside)) is None


async def test_sessions_record_who_and_where(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    commit = make_repo(repo, f"https://bob:{SECRET}@github.com/org/repo.git")
    manager = SessionManager.open(tmp_path / "s.db")
    try:
        first = manager.start(RunSpec(argv=["true"], cwd=str(repo)))
        await first.done
        await manager.flush()
        # the cache answers the next session at once, before it even starts
        second = manager.create(RunSpec(argv=[], command="x", cwd=str(repo), kind="k8s"))
        assert second.session.meta["git"]["commit"] == commit
        manager.finish(second, second.session.state)
        await manager.flush()
        stored = await manager.get(first.id)
    finally:
        manager.close()
    meta = stored.meta
    assert meta["user"] and meta["host"]
    assert meta["workspace"] == str(repo)
    assert meta["git"] == {
        "root": str(repo),
        "commit": commit,
        "branch": "main",
        "dirty": False,
        "remote": "https://github.com/org/repo.git",
    }
    # the store's copy, read by another process's manager, has it too
    again = SessionManager.open(tmp_path / "s.db")
    try:
        assert (await again.get(first.id)).meta["git"]["commit"] == commit
    finally:
        again.close()


async def test_a_file_is_placed_by_its_folder_and_the_editor_folders(tmp_path: Path) -> None:
    repo = tmp_path / "ws" / "repo"
    make_repo(repo)
    manager = SessionManager.open(tmp_path / "s.db")
    manager.provenance.roots = lambda: [str(tmp_path / "ws")]
    try:
        live = manager.create(
            RunSpec(
                argv=[],
                command="ktl apply",
                kind="k8s",
                meta={"uri": (repo / "app.yaml").as_uri()},
            )
        )
        manager.finish(live, live.session.state)
        await manager.flush()
    finally:
        manager.close()
    assert live.session.meta["workspace"] == str(tmp_path / "ws")
    assert live.session.meta["git"]["root"] == str(repo)


async def test_a_hanging_git_never_blocks_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    work.mkdir()
    manager = SessionManager.open(tmp_path / "s.db")
    manager.provenance.timeout_s = 0.5
    try:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        live = manager.start(RunSpec(argv=["true"], cwd=str(work)))
        assert "git" not in live.session.meta  # started without waiting for git
        await live.done
        await manager.flush()
        waited = time.monotonic() - started
        ticker.cancel()
    finally:
        manager.close()
    assert 0.4 < waited < 5
    assert ticks > 20  # the loop ran all along
    assert "git" not in live.session.meta
    assert live.session.meta["workspace"] == str(work)
