"""A malicious workspace cannot make the server run anything without an explicit command.

Files whose commands would touch a marker file (a plan, a ktl stack with hooks, a values
file, a ``.ktl.yaml``, manifests with exec probes, a Helm chart) are opened, edited, checked,
listed as CodeLens and resolved, and the workspace is scanned at start-up: no marker appears
and the server has no child process but the Helm render worker. Then ``ktl.plan.run`` on the plan runs it (the marker
appears): the only way a file's command runs is the user's own command.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types as lsp

from tests.conftest import StartKtl
from tests.lsp.features.helpers import children, server_pid
from tests.lsp.features.test_diagnostics import Publishes, workspace_checked


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def hostile(root: Path, marker: Path) -> dict[str, str]:
    touch = f"touch {marker}"
    files = {
        "evil.plan.yaml": f'name: evil\nnodes:\n  - {{id: a, run: "{touch}"}}\n',
        "stack.yaml": (
            "name: evil\nhooks:\n  preApply:\n    - {command: "
            f'"{touch}"}}\nreleases:\n  - {{name: r, chart: ./chart}}\n'
        ),
        ".ktl.yaml": f'kubeconfig: "$({touch})"\ncommand: "{touch}"\n',
        "chart/Chart.yaml": "apiVersion: v2\nname: evil\nversion: 0.1.0\n",
        "chart/values.yaml": f'image: "$({touch})"\n',
        "chart/values.schema.json": '{"type": "object"}\n',
        "chart/templates/x.yaml": f'a: {{{{ exec "{touch}" }}}}\n',
        "pod.yaml": (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            f'    - name: c\n      image: x\n      command: [sh, -c, "{touch}"]\n'
            f'      livenessProbe: {{exec: {{command: [sh, -c, "{touch}"]}}}}\n'
        ),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


async def _sandboxed(pid: int) -> str | None:
    """The worker's /proc status once its seccomp filter is on (or after 10 s); None if gone."""
    status = None
    for _ in range(200):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        if "Seccomp:\t2" in status:
            break
        await asyncio.sleep(0.05)
    return status


async def test_opening_and_checking_hostile_files_runs_nothing(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    marker = tmp_path.parent / f"{tmp_path.name}-pwned"
    files = hostile(tmp_path, marker)
    ktl = await start_ktl()  # the workspace root is tmp_path: it is scanned at start-up
    pubs = Publishes(ktl)
    pid = server_pid(ktl)
    for version, (name, text) in enumerate(files.items(), start=1):
        uri = (tmp_path / name).as_uri()
        ktl.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(
                    uri=uri, language_id="yaml", version=version, text=text
                )
            )
        )
        ktl.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version + 100),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text + "\n")],
            )
        )
        lenses = await ktl.client.text_document_code_lens_async(
            lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
        )
        for lens in lenses or []:
            await ktl.client.code_lens_resolve_async(lens)
        ktl.client.text_document_did_save(
            lsp.DidSaveTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
        )
    await ktl.cmd("ktl.sessions.list", {})  # a round trip: every notification was handled
    await workspace_checked(ktl)  # and the background read of the workspace is over
    versions = {name: v + 100 for v, name in enumerate(files, start=1)}
    for name in ("chart/templates/x.yaml", "pod.yaml"):  # the template checked after its render
        uri = (tmp_path / name).as_uri()
        await pubs.until(uri, lambda p, v=versions[name]: p.version == v)
    assert not marker.exists(), "a file's command ran without a user command"
    # Charts render in a worker process of ours; it runs nothing, and nothing else was started.
    others = [c for c, _ in children(pid) if b"ktl_lsp.helm.worker" not in _cmdline(c)]
    assert others == [], [_cmdline(c) for c in others]
    assert all(children(c) == [] for c, _ in children(pid))
    # ... unable to open a network socket (a seccomp filter: /proc says mode 2). A worker
    # started a moment ago (after one a render timed out) installs it first thing: wait for it.
    for worker in [c for c, _ in children(pid) if c not in others]:
        status = await _sandboxed(worker)
        assert status is None or "Seccomp:\t2" in status, status
    listed = await ktl.cmd("ktl.sessions.list", {})
    assert listed["sessions"] == [], "a session was started by opening files"

    # The explicit command is the one way in.
    result = await ktl.cmd("ktl.plan.run", {"uri": (tmp_path / "evil.plan.yaml").as_uri()})
    assert result["state"] == "done"
    assert marker.exists()
    marker.unlink()


async def test_a_values_schema_ref_never_reaches_the_network(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    hits: list[bytes] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.read(200))
        writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        chart = tmp_path / "chart"
        (chart / "templates").mkdir(parents=True)
        (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
        schema = f'{{"$ref": "http://127.0.0.1:{port}/beacon.json"}}\n'
        (chart / "values.schema.json").write_text(schema)
        (chart / "values.yaml").write_text("a: 1\n")
        ktl = await start_ktl()
        pubs = Publishes(ktl)
        uri = (chart / "values.yaml").as_uri()
        ktl.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(
                    uri=uri, language_id="yaml", version=1, text="a: 1\n"
                )
            )
        )
        await ktl.client.text_document_code_lens_async(
            lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
        )
        # the values were checked against the schema (a publish for the file) without a fetch
        await pubs.until(uri, lambda p: p.version == 1)
        assert hits == [], f"opening a values file made the server fetch a URL: {hits[:1]}"
    finally:
        listener.close()
        await listener.wait_closed()
