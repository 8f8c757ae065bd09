"""Session bundles through the installed command: ``run --bundle`` in CI, ``sessions bundle``
and ``sessions import`` into another store, and the bundles a store must refuse."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from tests.cli.conftest import ktl_lsp

AWS = "AKIAIOSFODNN7EXAMPLE"
SCRIPT = f"echo deploy-start; echo key={AWS}; echo deploy-end; exit 3"


def ran_with_bundle(tmp_path: Path) -> tuple[Path, Path, str]:
    store, bundle = tmp_path / "ci.db", tmp_path / "out.ktlbundle"
    ran = ktl_lsp(
        "--store", str(store), "run", "--quiet", "--bundle", str(bundle), "--", "sh", "-c", SCRIPT
    )
    assert ran.returncode == 3, ran.stderr  # the command's exit code, bundle or not
    assert f"ktl-lsp: bundle {bundle}" in ran.stderr
    sid = ran.stderr.split("ktl-lsp: session ", 1)[1].split()[0]
    return store, bundle, sid


def test_run_bundle_holds_everything_hashed_and_redacted(tmp_path: Path) -> None:
    _, bundle, sid = ran_with_bundle(tmp_path)
    with zipfile.ZipFile(bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
        names = set(z.namelist())
        assert names == {
            "manifest.json",
            "approvals.json",
            f"sessions/{sid}/session.json",
            f"sessions/{sid}/frames.ndjson",
            f"sessions/{sid}/session.cast",
            f"sessions/{sid}/replay.html",
        }
        for name, digest in manifest["members"].items():
            assert hashlib.sha256(z.read(name)).hexdigest() == digest
        everything = b"".join(z.read(n) for n in names)
    assert manifest["ktlBundle"] == 1 and manifest["root"] == sid and manifest["exitCode"] == 3
    assert set(manifest["redacted"]) == {"aws-access-key-id"}  # in the output and the command
    assert AWS.encode() not in everything
    assert b"deploy-end" in everything
    html = zipfile.ZipFile(bundle).read(f"sessions/{sid}/replay.html")
    assert html.startswith(b"<!doctype html>") or html.lower().startswith(b"<!doctype html>")


def test_import_into_another_store_keeps_ids_then_renames_on_clash(tmp_path: Path) -> None:
    _, bundle, sid = ran_with_bundle(tmp_path)
    other = tmp_path / "teammate.db"
    got = ktl_lsp("--store", str(other), "sessions", "import", str(bundle), "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"sessions": [sid]}
    shown = json.loads(ktl_lsp("--store", str(other), "sessions", "show", sid, "--json").stdout)
    assert shown["state"] == "error" and shown["exitCode"] == 3
    assert shown["meta"]["imported"]["originalId"] == sid
    assert shown["meta"]["imported"]["from"] == "out.ktlbundle"
    out = ktl_lsp("--store", str(other), "sessions", "output", sid, "--plain").stdout
    assert "deploy-start" in out and "deploy-end" in out and AWS not in out
    assert "key=[REDACTED aws-access-key-id]" in out
    again = ktl_lsp("--store", str(other), "sessions", "import", str(bundle), "--json")
    [new_id] = json.loads(again.stdout)["sessions"]
    assert new_id != sid


def test_bundle_command_and_refused_bundles(tmp_path: Path) -> None:
    store, _, sid = ran_with_bundle(tmp_path)
    made = ktl_lsp(
        "--store", str(store), "sessions", "bundle", sid[:8], "-o", str(tmp_path), "--json"
    )
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    path = Path(info["path"])
    assert path == tmp_path / f"{sid}.ktlbundle" and info["sessions"] == [sid]

    def refused(bad: Path) -> str:
        r = ktl_lsp("--store", str(tmp_path / "x.db"), "sessions", "import", str(bad))
        assert r.returncode == 1
        return r.stderr

    # a member changed after bundling: named
    tampered = tmp_path / "tampered.ktlbundle"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("frames.ndjson"):
                data += b"{}\n"  # one more line: a frame that was never recorded
            dst.writestr(item, data)
    assert (
        f"tampered bundle: member sessions/{sid}/frames.ndjson does not match its SHA-256"
        in refused(tampered)
    )
    # truncated
    cut = tmp_path / "cut.ktlbundle"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "is not a ktl bundle (corrupt or truncated)" in refused(cut)
    # from a newer version
    newer = tmp_path / "newer.ktlbundle"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(newer, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "manifest.json":
                data = json.dumps({**json.loads(data), "ktlBundle": 99}).encode()
            dst.writestr(item, data)
    assert "is bundle version 99, made by a newer ktl-lsp" in refused(newer)
    # nothing was imported from any of them
    listed = ktl_lsp("--store", str(tmp_path / "x.db"), "sessions", "list", "--json")
    assert json.loads(listed.stdout)["sessions"] == []


def test_exports_are_redacted_unless_revealed(tmp_path: Path) -> None:
    store, _, sid = ran_with_bundle(tmp_path)
    for fmt in ("ndjson", "asciicast", "html"):
        out = ktl_lsp("--store", str(store), "sessions", "export", sid, "-f", fmt)
        assert out.returncode == 0, out.stderr
        assert sid in out.stdout
        assert AWS not in out.stdout and "QUtJQUlPU0ZPRE5ON0VYQU1QTEU" not in out.stdout
    shown = ktl_lsp("--store", str(store), "sessions", "export", sid, "-f", "asciicast", "--reveal")
    assert f"key={AWS}" in shown.stdout
    # the store keeps what was recorded: only what leaves it is redacted
    assert AWS in ktl_lsp("--store", str(store), "sessions", "output", sid).stdout
