"""A plan's bundle: the plan session, every node's session and the plan file, imported into
another store with the parent links kept."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from ktl_lsp.orchestration import PlanOptions, PlanRun, load, local_runners
from ktl_lsp.sessions.bundle import BundleInfo
from ktl_lsp.sessions.manager import SessionManager
from ktl_lsp.sessions.model import Session, SessionFilter
from tests.orchestration.conftest import write_plan
from tests.sessions.test_export import Spec


async def test_plan_bundle_has_its_nodes_and_plan_file(tmp_path: Path) -> None:
    manager = SessionManager.open(tmp_path / "a.db")
    other = SessionManager.open(tmp_path / "b.db")
    try:
        data = {
            "name": "ship",
            "nodes": [
                {"id": "build", "run": "echo built"},
                {"id": "test", "run": "echo tested", "deps": ["build"]},
            ],
        }
        plan = load(write_plan(tmp_path, data))
        live = PlanRun(manager, plan, local_runners(manager), PlanOptions()).start()
        session = await live.done
        children = [n["sessionId"] for n in session.meta["plan"]["nodes"]]
        info = await manager.bundle(session.id, tmp_path / "ship.ktlbundle")
        assert info.sessions[0] == session.id  # the root first, its nodes after
        assert set(info.sessions) == {session.id, *children}
        with zipfile.ZipFile(info.path) as z:
            assert z.read("plan.yaml") == Path(plan.source or "").read_bytes()
        imported = await other.import_bundle(info.path)
        assert imported == info.sessions
        kids = await other.list_sessions(SessionFilter(parent_id=session.id))
        assert {k.id for k in kids} == set(children)
        built = "\n".join(await other.output_lines(children[0]))
        assert "built" in built
    finally:
        manager.close()
        other.close()


def test_recorded_results_are_redacted_in_bundles_and_exports(tmp_path: Path) -> None:
    """A diff in a session's result (a Secret's kubeconfig-style token on its own line, an AWS
    key) is scanned as text, so line-anchored rules match inside it, as in the output."""
    from ktl_lsp.sessions.bundle import write_bundle
    from ktl_lsp.sessions.export import export_to_path
    from ktl_lsp.sessions.model import FrameType, event_data
    from ktl_lsp.sessions.redact import Redaction
    from tests.sessions.test_export import open_store, record

    token = "abcdefghijklmnop0123456789"
    aws = "AKIAIOSFODNN7EXAMPLE"
    diff = f"--- a\n+++ b\n token: {token}\n+key {aws}\n"
    store = open_store(tmp_path / "s.db")
    try:
        s = record(
            store,
            [
                (100, FrameType.OUTPUT, b"diffed\r\n"),
                (200, FrameType.EVENT, event_data(result={"diff": diff, "changed": 1})),
            ],
        )
        info = write_bundle(store, s.id, tmp_path / "d.ktlbundle")
        with zipfile.ZipFile(info.path) as z:
            result = json.loads(z.read(f"sessions/{s.id}/result.json"))
            everything = b"".join(z.read(n) for n in z.namelist())
        assert result["changed"] == 1
        assert result["diff"].splitlines()[2:] == [
            " token: [REDACTED kubeconfig-token]",
            "+key [REDACTED aws-access-key-id]",
        ]
        assert token.encode() not in everything and aws.encode() not in everything
        assert info.redacted == {"kubeconfig-token": 1, "aws-access-key-id": 1}
        out = export_to_path(
            store, s.id, "ndjson", tmp_path / "s.ndjson", redaction=Redaction.default()
        )
        exported = out.read_bytes()
        assert b"changed" in exported and token.encode() not in exported
    finally:
        store.close()


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n != "manifest.json"}


def _bundled(tmp_path: Path, frames: Sequence[Spec]) -> tuple[Session, BundleInfo]:
    """A session of ``frames`` recorded in a store of its own, and its bundle."""
    from ktl_lsp.sessions.bundle import write_bundle
    from tests.sessions.test_export import open_store, record

    store = open_store(tmp_path / "s.db")
    try:
        s = record(store, frames)
        return s, write_bundle(store, s.id, tmp_path / "b.ktlbundle")
    finally:
        store.close()


def test_secrets_are_redacted_everywhere_even_split_across_frames(tmp_path: Path) -> None:
    """Secrets at every place (a frame's start and end, input, the last frame, and one split
    across two frames) are replaced in every member, as an export replaces them."""
    from ktl_lsp.sessions.model import FrameType

    aws, token = "AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1B2" * 9
    frames: list[Spec] = []
    for i in range(3000):
        data = f"line {i} ok\r\n".encode() * 20
        if i % 500 == 7:
            data = f"key={aws}\r\n".encode() + data + f"token {token}".encode()
        frames.append((i, FrameType.OUTPUT, data))
        if i % 1000 == 3:
            frames.append((i, FrameType.INPUT, f"export K={aws}\r".encode()))
    frames.append((3500, FrameType.OUTPUT, f"split {aws[:9]}".encode()))
    frames.append((3501, FrameType.OUTPUT, f"{aws[9:]} here\r\n".encode()))
    frames.append((4000, FrameType.OUTPUT, f"last {aws}\r\n".encode()))
    s, bundle = _bundled(tmp_path, frames)
    assert bundle.redacted == {"aws-access-key-id": 11, "github-token": 6}
    members = _members(bundle.path)
    assert f"sessions/{s.id}/replay.html" in members
    everything = b"".join(members.values())
    assert aws.encode() not in everything and token.encode() not in everything
    assert aws[9:].encode() not in everything  # the second half of the split one too
    assert everything.count(b"[REDACTED aws-access-key-id]") >= 11


def test_the_replay_holds_the_ndjson_member_and_is_the_html_export(tmp_path: Path) -> None:
    """The replay is deflated around the NDJSON member's own deflate stream: read back, it is
    the HTML export byte for byte, and the NDJSON in it is the member's ('<' escaped)."""
    from ktl_lsp.sessions.bundle import write_bundle
    from ktl_lsp.sessions.model import FrameType, State, event_data
    from ktl_lsp.sessions.redact import Redaction
    from tests.sessions.test_export import exported, open_store, record

    frames = [(i, FrameType.OUTPUT, b"line %d </script> ok\r\n" % i * 40) for i in range(300)]
    frames += [(400, FrameType.MARKER, b'{"label":"</script><!-- <b>"}')]
    frames += [(500, FrameType.EVENT, event_data(state="done", exitCode=0))]
    store = open_store(tmp_path / "s.db")
    try:
        s = record(store, frames, title="<title> & more", state=State.DONE, exit_code=0)
        info = write_bundle(store, s.id, tmp_path / "b.ktlbundle")
        export = exported(store, s.id, "html", redaction=Redaction.default())
    finally:
        store.close()
    members = _members(info.path)
    replay, ndjson = (members[f"sessions/{s.id}/{n}"] for n in ("replay.html", "frames.ndjson"))
    assert replay == export
    assert ndjson in replay and b"</script> ok" not in ndjson and b"\\u003c/script>" in ndjson
    assert replay.count(b"</script>") == replay.lower().count(b"<script")


def test_gitlab_tokens_of_every_kind_are_redacted_in_bundles(tmp_path: Path) -> None:
    """GitLab's rule runs only where one of its token prefixes is (``gl`` alone is in most
    output): each kind of token is still replaced, one split across two frames too."""
    from ktl_lsp.sessions.bundle import read_bundle
    from ktl_lsp.sessions.model import FrameType

    body = "aB3-dE5_gH7jK9mN1pQ3sT5vW7yZ9bC2eF4hJ6kL8nP0rS2uV4xY6zA8cD0fG2iK4mO6qU8wE0tR"
    tokens = [
        *(f"{p}-{body[:20]}" for p in ("glpat", "gldt", "glft", "glsoat", "glrt", "glcbt")),
        f"GR1348941{body[:24]}",
        f"glimt-{body[:25]}",
        f"glptt-{body[:40]}",
        f"glagent-{body[:50]}",
        f"gloas-{body[:64]}",
    ]
    ordinary = b"global glibc glob gloom: all fine\r\n" * 30
    frames: list[Spec] = []
    for i, t in enumerate(tokens):  # each scanned apart: more than CONTEXT bytes between
        frames.append((2 * i, FrameType.OUTPUT, ordinary * 5))
        frames.append((2 * i + 1, FrameType.OUTPUT, ordinary + f"token {t} used\r\n".encode()))
    split = f"glpat-{body[20:44]}"
    frames += [(50, FrameType.OUTPUT, f"again {split[:8]}".encode())]
    frames += [(51, FrameType.OUTPUT, f"{split[8:]} done\r\n".encode())]
    s, bundle = _bundled(tmp_path, frames)
    assert bundle.redacted == {"gitlab-token": len(tokens) + 1}
    members = _members(bundle.path)
    cast = members[f"sessions/{s.id}/session.cast"]
    output = b"".join(f.data for f in read_bundle(bundle.path).sessions[0][1])
    for t in [*tokens, split]:
        assert t.encode() not in output and t.encode() not in cast
    assert split[8:].encode() not in output
    assert output.count(b"[REDACTED gitlab-token]") == len(tokens) + 1
    assert output.count(b"global glibc glob gloom") == 30 * 6 * len(tokens)


def test_bundles_zipped_otherwise_import_and_every_member_is_checked(tmp_path: Path) -> None:
    """Members stored or deflated by zlib (another zip tool, an older ktl-lsp) import the
    same; a member import does not keep (the replay) is still checked and named."""
    from ktl_lsp.sessions.bundle import BundleError, read_bundle, write_bundle
    from ktl_lsp.sessions.model import FrameType
    from tests.sessions.test_export import open_store, record

    store = open_store(tmp_path / "s.db")
    try:
        s = record(store, [(i, FrameType.OUTPUT, b"x%d\r\n" % i * 50) for i in range(200)])
        info = write_bundle(store, s.id, tmp_path / "b.ktlbundle")
    finally:
        store.close()
    frames = read_bundle(info.path).sessions[0][1]
    assert len(frames) == 202 and frames[-1].data == b"x199\r\n" * 50
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        again = tmp_path / f"{method}.ktlbundle"
        with zipfile.ZipFile(info.path) as src, zipfile.ZipFile(again, "w", method) as dst:
            for name in src.namelist():
                dst.writestr(name, src.read(name))
        assert read_bundle(again).sessions[0][1] == frames
    tampered = tmp_path / "tampered.ktlbundle"
    with zipfile.ZipFile(info.path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("replay.html"):
                data += b"<p>not recorded</p>\n"
            dst.writestr(item, data)
    with pytest.raises(BundleError) as refused:
        read_bundle(tampered)
    assert str(refused.value) == (
        f"tampered bundle: member sessions/{s.id}/replay.html does not match its SHA-256"
    )
