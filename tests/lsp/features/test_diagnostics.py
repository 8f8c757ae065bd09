"""Diagnostics end to end: didOpen/didChange -> publishDiagnostics from a real server process."""

from __future__ import annotations

import asyncio
import random
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from lsprotocol import types as lsp

from tests.conftest import Ktl, StartKtl

PUBLISH = lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS

Brief = tuple[str, int, int, int, int, lsp.DiagnosticSeverity | None, str | None]


def brief(diagnostics: Sequence[lsp.Diagnostic]) -> list[Brief]:
    return [
        (
            str(d.code),
            d.range.start.line,
            d.range.start.character,
            d.range.end.line,
            d.range.end.character,
            d.severity,
            d.source,
        )
        for d in diagnostics
    ]


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def open_doc(ktl: Ktl, path: Path, text: str | None = None, version: int = 1) -> str:
    uri = path.as_uri()
    ktl.client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri,
                language_id="yaml",
                version=version,
                text=path.read_text() if text is None else text,
            )
        )
    )
    return uri


def edit(ktl: Ktl, uri: str, version: int, line: int, start: int, end: int, text: str) -> None:
    """An incremental change replacing `line[start:end]` with `text`."""
    ktl.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                lsp.TextDocumentContentChangePartial(
                    range=lsp.Range(
                        start=lsp.Position(line=line, character=start),
                        end=lsp.Position(line=line, character=end),
                    ),
                    text=text,
                )
            ],
        )
    )


class Publishes:
    """Every publishDiagnostics the client received, in order, and a way to wait for one.

    Republishing is allowed (the workspace folders load in the background, other files'
    edits), so tests wait for the content or version they expect, not for the n-th message.
    """

    def __init__(self, ktl: Ktl) -> None:
        self.log: list[lsp.PublishDiagnosticsParams] = []
        self._event = asyncio.Event()
        features = ktl.client.protocol.fm.features
        default = features[PUBLISH]  # pytest-lsp's own (fills client.diagnostics)

        def record(params: lsp.PublishDiagnosticsParams) -> None:
            default(params)
            self.log.append(params)
            self._event.set()

        features[PUBLISH] = record

    def latest(self, uri: str) -> lsp.PublishDiagnosticsParams | None:
        return next((p for p in reversed(self.log) if p.uri == uri), None)

    def versions(self, uri: str, since: int = 0) -> list[int | None]:
        return [p.version for p in self.log[since:] if p.uri == uri]

    async def until(
        self,
        uri: str,
        cond: Callable[[lsp.PublishDiagnosticsParams], bool] = lambda p: True,
        timeout: float = 20,
    ) -> lsp.PublishDiagnosticsParams:
        """The newest publish for `uri`, once it satisfies `cond`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            latest = self.latest(uri)
            if latest is not None and cond(latest):
                return latest
            self._event.clear()
            await asyncio.wait_for(self._event.wait(), max(0.01, deadline - loop.time()))


@pytest.fixture
def pubs(ktl: Ktl) -> Publishes:
    return Publishes(ktl)


async def workspace_checked(ktl: Ktl, timeout: float = 20) -> None:
    """Waits for the background read of the workspace folders (and its re-publishing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any("ktl: workspace checked" in m.message for m in ktl.client.log_messages):
        assert loop.time() < deadline, "the workspace folders were never read"
        await asyncio.sleep(0.02)


def codes(params: lsp.PublishDiagnosticsParams) -> list[str]:
    return [str(d.code) for d in params.diagnostics]


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  retries: 3
"""


async def test_broken_manifest_then_fixed_then_closed(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    path = write(tmp_path, "settings.yaml", CONFIGMAP)
    uri = open_doc(ktl, path)
    params = await pubs.until(uri, lambda p: p.version == 1)
    assert brief(params.diagnostics) == [
        ("k8s-schema", 5, 11, 5, 12, lsp.DiagnosticSeverity.Error, "ktl")
    ]
    assert params.diagnostics[0].message == "data.retries: expected string, got integer 3"
    assert ktl.client.diagnostics[uri] == params.diagnostics

    edit(ktl, uri, 2, 5, 11, 12, '"3"')
    params = await pubs.until(uri, lambda p: p.version == 2)
    assert not params.diagnostics

    edit(ktl, uri, 3, 5, 2, 9, 'retries: "2"\n  retries')  # a duplicate key, with related info
    params = await pubs.until(uri, lambda p: p.version == 3)
    [dup] = params.diagnostics
    assert brief([dup]) == [("yaml-duplicate-key", 6, 2, 6, 9, lsp.DiagnosticSeverity.Error, "ktl")]
    assert dup.related_information is not None
    [first] = dup.related_information
    assert first.location.uri == uri
    assert first.location.range.start == lsp.Position(line=5, character=2)

    ktl.client.text_document_did_close(
        lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    params = await pubs.until(uri, lambda p: p.version is None)
    assert not params.diagnostics


MULTI = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: two
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""


async def test_edit_in_one_document_of_a_multi_document_file(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    path = write(tmp_path, "app.yaml", MULTI)
    uri = open_doc(ktl, path)
    params = await pubs.until(uri, lambda p: p.version == 1)
    error = lsp.DiagnosticSeverity.Error
    assert brief(params.diagnostics) == [("k8s-schema", 13, 12, 13, 15, error, "ktl")]
    assert params.diagnostics[0].message == 'spec.replicas: expected integer, got string "two"'

    # Break the Service (third document): the Deployment's finding stays where it is.
    edit(ktl, uri, 2, 31, 17, 19, '"80"')
    params = await pubs.until(uri, lambda p: p.version == 2)
    assert brief(params.diagnostics) == [
        ("k8s-schema", 13, 12, 13, 15, error, "ktl"),
        ("k8s-schema", 31, 17, 31, 21, error, "ktl"),
    ]

    # Fix the Deployment (second document) with a line-count change above the Service.
    edit(ktl, uri, 3, 13, 12, 15, "2\n  minReadySeconds: 5")
    params = await pubs.until(uri, lambda p: p.version == 3)
    assert brief(params.diagnostics) == [("k8s-schema", 32, 17, 32, 21, error, "ktl")]


async def test_fast_typing_is_coalesced_into_the_newest_version(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    path = write(tmp_path, "settings.yaml", CONFIGMAP)
    uri = open_doc(ktl, path)
    await pubs.until(uri, lambda p: p.version == 1)
    await workspace_checked(ktl)  # no re-publishing of version 1 from now on
    mark = len(pubs.log)
    digits = "4567890123" * 3
    for version, digit in enumerate(digits, start=2):
        edit(ktl, uri, version, 5, 11, 12, digit)  # still an integer: the finding stays
    last = len(digits) + 1
    params = await pubs.until(uri, lambda p: p.version == last)
    # The first change is checked at once; the rest arrive while it runs and give one more
    # check of the newest text (a third when the first ended before the second change was
    # read): never a publish per keystroke, never an old version last.
    versions = pubs.versions(uri, mark)
    assert len(versions) <= 3 and versions[-1] == last, versions
    assert versions == sorted(versions), versions
    assert (
        params.diagnostics[0].message == f"data.retries: expected string, got integer {digits[-1]}"
    )


STACK = """\
name: shop
defaults:
  cluster: {name: dev}
releases:
  - name: api
    chart: ./charts/app
    needs: [db]
  - name: db
    chart: ./charts/app
    needs: [api]
"""


async def test_stack_cycle_has_related_information(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    write(tmp_path, "charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    path = write(tmp_path, "stack.yaml", STACK)
    uri = open_doc(ktl, path)
    params = await pubs.until(uri, lambda p: p.version == 1)
    error = lsp.DiagnosticSeverity.Error
    assert brief(params.diagnostics) == [
        ("stack-cycle", 6, 12, 6, 14, error, "ktl"),
        ("stack-cycle", 9, 12, 9, 15, error, "ktl"),
    ]
    first = params.diagnostics[0]
    assert first.message.startswith("dependency cycle detected: [dev/default/api(api)")
    assert first.related_information is not None
    [other_edge] = first.related_information
    assert other_edge.location.uri == uri
    assert other_edge.location.range == lsp.Range(
        start=lsp.Position(line=9, character=12), end=lsp.Position(line=9, character=15)
    )
    assert other_edge.message == "dev/default/db needs api"

    edit(ktl, uri, 2, 9, 11, 16, "[]")  # db needs nothing: no cycle
    params = await pubs.until(uri, lambda p: p.version == 2)
    assert not params.diagnostics


async def test_edit_in_one_file_republishes_the_other(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    """A cycle across two release files: breaking it in one clears the other one too."""
    write(tmp_path, "charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    write(tmp_path, "stack.yaml", "defaults:\n  cluster: {name: c1}\n")
    a = write(tmp_path, "svc/a/release.yaml", "name: a\nchart: ../../charts/app\nneeds: [b]\n")
    b = write(tmp_path, "svc/b/release.yaml", "name: b\nchart: ../../charts/app\nneeds: [a]\n")
    uri_a = open_doc(ktl, a)
    uri_b = open_doc(ktl, b)

    def cycle(p: lsp.PublishDiagnosticsParams) -> bool:
        return codes(p) == ["stack-cycle"]

    params_b = await pubs.until(uri_b, cycle)
    params_a = await pubs.until(uri_a, cycle)
    assert brief(params_a.diagnostics)[0][:5] == ("stack-cycle", 2, 8, 2, 9)
    related = params_a.diagnostics[0].related_information
    assert related is not None and related[0].location.uri == uri_b
    related = params_b.diagnostics[0].related_information
    assert related is not None and related[0].location.uri == uri_a

    edit(ktl, uri_b, 2, 2, 0, 11, "")  # b needs nothing any more
    params_b = await pubs.until(uri_b, lambda p: p.version == 2)
    assert not params_b.diagnostics
    params_a = await pubs.until(uri_a, lambda p: not p.diagnostics)
    assert params_a.version == 1  # a itself did not change


def deployments(count: int) -> str:
    one = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-{i}
  labels: {{app: web-{i}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web-{i}}}
  template:
    metadata:
      labels: {{app: web-{i}}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{{containerPort: 80}}]
"""
    return "---\n".join(one.format(i=i) for i in range(count))


def alias_bomb() -> str:
    lines = ['a0: &a0 "lol"']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


async def test_bad_input_gets_one_diagnostic_and_the_server_stays_responsive(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    await ktl.cmd("ktl.sessions.list")  # the session store is open before the clock starts
    # 2,000 valid Deployments (a second or so of checking) and a 10,000-deep nesting at the end.
    deep = "a: " + "[" * 10_000 + "]" * 10_000 + "\n"
    big_text = deployments(2000) + "---\n" + deep
    big = open_doc(ktl, tmp_path / "big.yaml", big_text)  # only in the editor, not on disk
    listed = await ktl.cmd("ktl.sessions.list")
    assert listed == {"sessions": []}
    # Answered while the check is still in flight: nothing was published for the file yet.
    assert big not in ktl.client.diagnostics

    params = await pubs.until(big, timeout=60)
    [only] = params.diagnostics
    line = big_text.count("\n") - 1
    assert (only.code, only.range.start.line, only.source) == ("yaml-syntax", line, "ktl")
    assert only.message == "exceeded maximum nesting depth"

    bomb = open_doc(ktl, tmp_path / "bomb.yaml", alias_bomb())
    params = await pubs.until(bomb)
    [only] = params.diagnostics
    assert only.code == "yaml-too-complex"
    assert "alias bomb" in only.message


async def test_files_the_checker_does_not_know_are_left_alone(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    notes = open_doc(ktl, tmp_path / "notes.txt", "apiVersion: [\n")
    helm = open_doc(
        ktl, tmp_path / "chart/templates/deploy.yaml", "kind: {{ .Values.kind }}\nx: [\n"
    )
    manifest = open_doc(ktl, tmp_path / "cm.yaml", CONFIGMAP)
    # Checks run in order, so the template's (empty) diagnostics are in by now.
    await pubs.until(manifest, lambda p: codes(p) == ["k8s-schema"])
    assert not ktl.client.diagnostics[helm]  # Helm templates never get false YAML errors
    assert notes not in ktl.client.diagnostics


HPA_V2BETA2 = """\
apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {kind: Deployment, name: web}
  maxReplicas: 3
"""


async def test_k8s_version_setting(start_ktl: StartKtl, tmp_path: Path) -> None:
    newest = await start_ktl()
    old = await start_ktl(options={"k8sVersion": "1.25"})
    bad = await start_ktl(options={"k8sVersion": "0.1"})
    path = write(tmp_path, "hpa.yaml", HPA_V2BETA2)
    results = []
    for ktl in (newest, old, bad):
        pubs = Publishes(ktl)
        results.append(await pubs.until(open_doc(ktl, path)))
    [removed] = results[0].diagnostics
    assert (removed.code, removed.range.start.line) == ("k8s-unknown-kind", 0)
    assert removed.message.endswith("; use apiVersion: autoscaling/v2")
    assert not results[1].diagnostics  # still served in 1.25
    assert codes(results[2]) == ["k8s-unknown-kind"]  # an unknown version falls back to newest
    assert "setting 'k8sVersion': no schemas for Kubernetes 0.1" in bad.logs()


async def test_files_changed_on_disk_are_seen(ktl: Ktl, pubs: Publishes, tmp_path: Path) -> None:
    """A release file deleted on disk (not open in the editor) breaks the other's need."""
    write(tmp_path, "charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    write(tmp_path, "stack.yaml", "defaults:\n  cluster: {name: c1}\n")
    a = write(tmp_path, "svc/a/release.yaml", "name: a\nchart: ../../charts/app\nneeds: [b]\n")
    b = write(tmp_path, "svc/b/release.yaml", "name: b\nchart: ../../charts/app\n")
    uri_a = open_doc(ktl, a)
    await workspace_checked(ktl)
    await settled(pubs, uri_a, lambda p: not p.diagnostics)
    b.unlink()
    ktl.client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(
            changes=[lsp.FileEvent(uri=b.as_uri(), type=lsp.FileChangeType.Deleted)]
        )
    )
    params = await settled(pubs, uri_a, lambda p: codes(p) == ["stack-missing-need"])
    assert params.diagnostics[0].range.start.line == 2
    b.write_text("name: b\nchart: ../../charts/app\n")
    ktl.client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(
            changes=[lsp.FileEvent(uri=b.as_uri(), type=lsp.FileChangeType.Created)]
        )
    )
    await settled(pubs, uri_a, lambda p: not p.diagnostics)


async def settled(
    pubs: Publishes, uri: str, cond: Callable[[lsp.PublishDiagnosticsParams], bool]
) -> lsp.PublishDiagnosticsParams:
    for _ in range(1000):
        latest = pubs.latest(uri)
        if latest is not None and cond(latest):
            return latest
        await asyncio.sleep(0.02)
    raise AssertionError(f"no matching publish for {uri}: {pubs.latest(uri)}")


async def test_a_lone_surrogate_is_an_encoding_problem_at_its_place(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    """JSON may carry an unpaired surrogate escape: each is reported where it is (in UTF-16
    units, after an emoji's two), and the rest of the file is checked as usual."""
    text = CONFIGMAP + "  name: \udcff\n  note: \U0001f600\ud800\n"
    uri = open_doc(ktl, tmp_path / "cm.yaml", text)
    params = await pubs.until(uri)
    assert sorted(brief(params.diagnostics)) == [
        ("file-encoding", 6, 8, 6, 9, lsp.DiagnosticSeverity.Error, "ktl"),
        ("file-encoding", 7, 10, 7, 11, lsp.DiagnosticSeverity.Error, "ktl"),
        ("k8s-schema", 5, 11, 5, 12, lsp.DiagnosticSeverity.Error, "ktl"),
    ]
    messages = sorted(d.message for d in params.diagnostics if d.code == "file-encoding")
    assert [m.split(":")[0] for m in messages] == ["lone surrogate U+D800", "lone surrogate U+DCFF"]
    assert "feature failed" not in ktl.logs()


def random_binary(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("decoding", ["latin-1", "utf-8"])
async def test_a_binary_buffer_is_binary_wherever_it_is(
    ktl: Ktl, pubs: Publishes, tmp_path: Path, decoding: str
) -> None:
    """2 MB of random bytes as an editor decodes them (latin-1, or UTF-8 with U+FFFD), in a
    chart's templates/ folder and elsewhere: the same `file-binary` as the file on disk gets."""
    # These bytes happen to hold `{{-` (as about one 2 MB binary in ten holds a Go-template
    # action): outside templates/ too, their content alone made them a Helm template.
    data = random_binary(2 * 1024 * 1024, seed=16)
    text = data.decode(decoding, errors="replace")
    names = ("chart/templates/blob.yaml", "blob.yaml")
    uris = {name: open_doc(ktl, tmp_path / name, text) for name in names}
    got = {
        name: brief((await pubs.until(uri, timeout=60)).diagnostics) for name, uri in uris.items()
    }
    binary = ("file-binary", 0, 0, 0, 0, lsp.DiagnosticSeverity.Warning, "ktl")
    assert got == {name: [binary] for name in names}


def flow_mapping(size: int, tag: str) -> str:
    """One line `{a0: 0, a1: 1, ...}` of about `size` characters: cheap text, costly parse."""
    pairs, length = [], 0
    while length < size:
        pairs.append(f"{tag}{len(pairs)}: {len(pairs)}")
        length += len(pairs[-1]) + 2
    return "{" + ", ".join(pairs) + "}\n"


async def test_closed_buffers_leave_no_parse_behind(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    """Large flow mappings opened and closed one after another (only in the editor, and on
    disk): what the parses hold goes back to what it was, whatever the cache's limit."""
    first = open_doc(ktl, write(tmp_path, "cm.yaml", CONFIGMAP))
    await pubs.until(first)
    await workspace_checked(ktl)  # before the big files exist: the folder read never sees them
    before = await ktl.cmd("ktl.server.stats", {})
    held = []
    for i in range(6):
        text = flow_mapping(1_000_000, f"k{i}_")
        path = tmp_path / f"big{i}.yaml"
        if i % 2:
            path.write_text(text)
        uri = open_doc(ktl, path, text)
        await pubs.until(uri, timeout=30)
        held.append((await ktl.cmd("ktl.server.stats", {}))["parses"])
        ktl.client.text_document_did_close(
            lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
        )
    # Checks and closes run in order: once this one is published, every close is done.
    last = open_doc(ktl, write(tmp_path, "last.yaml", CONFIGMAP.replace("settings", "last")))
    await pubs.until(last)
    after = await ktl.cmd("ktl.server.stats", {})
    one = min(h["openBytes"] for h in held) - before["parses"]["openBytes"]
    assert one > 20 * 1024 * 1024  # each buffer's parse was big while it was open
    assert after["parses"]["openFiles"] == 2
    assert after["parses"]["openBytes"] < 2 * before["parses"]["openBytes"] + 1024 * 1024
    assert after["parses"]["cacheBytes"] < before["parses"]["cacheBytes"] + 1024 * 1024
    # And the process gave the memory back (six parses were kept before).
    assert after["rssBytes"] - before["rssBytes"] < 2 * one


async def test_notifications_leave_no_handler_behind(
    ktl: Ktl, pubs: Publishes, tmp_path: Path
) -> None:
    """Every keystroke is a didChange: none may leave anything behind in the server."""
    uri = open_doc(ktl, tmp_path / "cm.yaml", CONFIGMAP)
    for version in range(2, 302):
        ktl.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=CONFIGMAP)],
            )
        )
    await pubs.until(uri, lambda p: p.version == 301)
    stats = await ktl.cmd("ktl.server.stats", {})
    assert stats["pendingHandlers"] <= 2  # this request itself
