"""Kubernetes commands end to end: a real ktl-lsp process, the real kubernetes client inside it,
and the loopback API server (tests/k8s_api) in this process."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from tests.conftest import Ktl
from tests.k8s_api import FakeApi
from tests.lsp.features.helpers import output_text, running_session
from tests.lsp.features.test_diagnostics import Publishes

APP = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Namespace
    metadata:
      name: shop
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: shop
    spec:
      replicas: 2
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: IMAGE
    """
)


def open_doc(ktl: Ktl, path: Path, text: str) -> str:
    path.write_text(text)
    uri = path.as_uri()
    ktl.client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=text)
        )
    )
    return uri


def change(ktl: Ktl, uri: str, text: str, version: int) -> None:
    ktl.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def test_contexts_and_use(k8s: Ktl, api: FakeApi) -> None:
    result = await k8s.cmd("ktl.k8s.contexts")
    assert result["current"] == "fake"
    assert result["contexts"] == [
        {"name": "fake", "cluster": "fake", "namespace": None},
        {"name": "gone", "cluster": "gone", "namespace": None},
    ]
    assert await k8s.cmd("ktl.k8s.use", {"namespace": "shop"}) == {
        "context": None,
        "namespace": "shop",
    }
    with pytest.raises(
        JsonRpcInvalidParams, match="field 'context': context \"nope\" is not in the kubeconfig"
    ):
        await k8s.cmd("ktl.k8s.use", {"context": "nope"})


async def test_apply_errors_to_lines_then_cleared(k8s: Ktl, api: FakeApi, tmp_path: Path) -> None:
    pubs = Publishes(k8s)
    bad = APP.replace("image: IMAGE", "image: ''")
    uri = open_doc(k8s, tmp_path / "app.yaml", bad)
    await pubs.until(uri)
    result = await k8s.cmd("ktl.apply", {"uri": uri})
    assert result["state"] == "error"
    assert result["resources"] == [
        {
            "kind": "Namespace",
            "name": "shop",
            "namespace": None,
            "action": "created",
            "document": 0,
        },
        {
            "kind": "Deployment",
            "name": "web",
            "namespace": "shop",
            "action": "failed",
            "document": 1,
            "message": 'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value',
        },
    ]
    published = await pubs.until(
        uri, lambda p: any(d.code == "k8s-api-error" for d in p.diagnostics)
    )
    [diag] = [d for d in published.diagnostics if d.code == "k8s-api-error"]
    assert diag.message == "spec.template.spec.containers[0].image: Required value"
    assert (diag.range.start.line, diag.range.start.character, diag.range.end.character) == (
        20,
        8,
        13,
    )
    assert diag.source == "ktl" and diag.severity == lsp.DiagnosticSeverity.Error
    # the session recorded it too, with the server's message
    text = await output_text(k8s, result["sessionId"], plain=True)
    assert "failed     Deployment/web -n shop" in text and "Required value" in text
    session = await k8s.cmd("ktl.session.get", {"sessionId": result["sessionId"]})
    assert session["kind"] == "k8s"
    assert session["meta"]["kubeContext"] == "fake"
    assert session["meta"]["namespace"] == "shop"
    assert session["meta"]["cluster"] == "fake"
    # fixed and applied again (only the deployment, as its lens does): the diagnostic goes away
    good = APP.replace("IMAGE", "nginx:1.27")
    change(k8s, uri, good, 2)
    result = await k8s.cmd("ktl.apply", {"uri": uri, "documents": [1]})
    assert result["state"] == "done"
    assert [r["action"] for r in result["resources"]] == ["created"]
    await pubs.until(
        uri, lambda p: p.version == 2 and not any(d.code == "k8s-api-error" for d in p.diagnostics)
    )


async def test_yaml_error_document_not_sent_others_proceed(
    k8s: Ktl, api: FakeApi, tmp_path: Path
) -> None:
    text = (
        APP.replace("IMAGE", "nginx")
        + "---\nkind: [broken\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n"
    )
    path = tmp_path / "mixed.yaml"
    path.write_text(text)  # not open in the editor: read from disk
    result = await k8s.cmd("ktl.apply", {"uri": path.as_uri(), "dryRun": True})
    assert [(r["kind"], r["action"]) for r in result["resources"]] == [
        ("Namespace", "created"),
        ("Deployment", "failed"),  # its namespace does not exist: a dry run creates nothing
        ("", "failed"),
        ("ConfigMap", "failed"),
    ]
    assert result["resources"][2]["message"].startswith("not sent: YAML error")
    assert result["resources"][1]["message"] == 'namespaces "shop" not found'
    assert api.get("v1", "Namespace", "shop") is None


async def test_diff_and_delete(k8s: Ktl, api: FakeApi, tmp_path: Path) -> None:
    uri = open_doc(k8s, tmp_path / "app.yaml", APP.replace("IMAGE", "nginx:1.27"))
    assert (await k8s.cmd("ktl.apply", {"uri": uri}))["state"] == "done"
    change(k8s, uri, APP.replace("IMAGE", "nginx:1.28"), 2)
    result = await k8s.cmd("ktl.diff", {"uri": uri})
    assert result["state"] == "done" and result["changed"] == 1
    assert "\n-      - image: nginx:1.27\n+      - image: nginx:1.28\n" in result["diff"]
    assert "managedFields" not in result["diff"]
    result = await k8s.cmd("ktl.delete", {"uri": uri, "propagation": "Foreground"})
    assert [(r["kind"], r["action"]) for r in result["resources"]] == [
        ("Namespace", "deleted"),
        ("Deployment", "deleted"),
    ]
    result = await k8s.cmd("ktl.delete", {"uri": uri, "documents": [1]})
    assert [r["action"] for r in result["resources"]] in (["absent"], ["deleted"])


async def test_logs_follow_and_cancel(k8s: Ktl, api: FakeApi) -> None:
    api.add_pod("web-1", namespace="default", containers=("app", "sidecar"), labels={"app": "web"})
    api.log("web-1", "app", "hello from app")
    api.log("web-1", "sidecar", "hello from sidecar")
    task = k8s.start("ktl.logs", {"selector": "app=web", "highlight": ["hello"]})
    sid = await running_session(k8s)
    for _ in range(500):
        text = await output_text(k8s, sid, plain=True)
        if "web-1/app hello from app" in text and "web-1/sidecar hello from sidecar" in text:
            break
        await asyncio.sleep(0.02)
    api.log("web-1", "app", "later line")
    for _ in range(500):
        if "web-1/app later line" in await output_text(k8s, sid, plain=True):
            break
        await asyncio.sleep(0.02)
    cancelled = await k8s.cmd("ktl.session.cancel", {"sessionId": sid})
    assert cancelled["state"] == "cancelled"
    result = await asyncio.wait_for(task, 10)
    assert result["state"] == "cancelled"
    text = await output_text(k8s, sid, plain=True)
    assert text.count("web-1/app hello from app") == 1 and "web-1/app later line" in text


async def test_verify_from_a_file(k8s: Ktl, api: FakeApi, tmp_path: Path) -> None:
    pubs = Publishes(k8s)
    uri = open_doc(k8s, tmp_path / "app.yaml", APP.replace("IMAGE", "example/does-not-exist:1"))
    await k8s.cmd("ktl.apply", {"uri": uri})
    result = await k8s.cmd("ktl.verify", {"uri": uri, "timeoutS": 1})
    assert result["passed"] is False and result["state"] == "error"
    assert result["error"].startswith(
        "verify: not ready (top blockers: Deployment/web status=NotReady"
    )
    reasons = {(f["resource"]["kind"], f["reason"]) for f in result["findings"]}
    assert reasons == {
        ("Deployment", "NotReady"),
        ("Deployment", "Failed"),
        ("Deployment", "BackOff"),
    }
    published = await pubs.until(uri, lambda p: any(d.code == "k8s-verify" for d in p.diagnostics))
    assert {d.range.start.line for d in published.diagnostics if d.code == "k8s-verify"} == {6}


async def test_cluster_errors_are_clear(k8s: Ktl, api: FakeApi, tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(APP.replace("IMAGE", "nginx"))
    result = await k8s.cmd("ktl.apply", {"uri": path.as_uri(), "context": "gone"})
    assert result["state"] == "error"
    assert result["error"].startswith(
        "cannot reach the cluster of context gone (http://127.0.0.1:9)"
    )
    result = await k8s.cmd("ktl.apply", {"uri": path.as_uri(), "context": "nope"})
    assert result["error"].startswith('context "nope" is not in the kubeconfig')
    api.tokens.clear()
    result = await k8s.cmd("ktl.apply", {"uri": path.as_uri()})
    assert "the cluster refused the credentials (401 Unauthorized)" in result["error"]


async def test_arguments_are_checked(k8s: Ktl, tmp_path: Path) -> None:
    with pytest.raises(JsonRpcInvalidParams, match="unknown field 'document'"):
        await k8s.cmd("ktl.apply", {"uri": "file:///x.yaml", "document": 1})
    with pytest.raises(JsonRpcInvalidParams, match="field 'dryRun': expected boolean"):
        await k8s.cmd("ktl.apply", {"uri": "file:///x.yaml", "dryRun": "yes"})
    path = tmp_path / "one.yaml"
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    with pytest.raises(
        JsonRpcInvalidParams, match=r"field 'documents': no document 3 \(the file has 1\)"
    ):
        await k8s.cmd("ktl.diff", {"uri": path.as_uri(), "documents": [3]})
    with pytest.raises(
        JsonRpcInvalidParams, match="exactly one of 'pod', 'workload' or 'selector'"
    ):
        await k8s.cmd("ktl.logs", {"pod": "a", "selector": "b=c"})
    with pytest.raises(JsonRpcInvalidParams, match="exactly one of 'uri' or 'resources'"):
        await k8s.cmd("ktl.verify", {})


async def test_both_cancel_paths_stop_a_follow(k8s: Ktl, api: FakeApi) -> None:
    api.add_pod("p", labels={"app": "p"})
    api.log("p", "app", "hello")
    # progress cancel
    task = k8s.start("ktl.events", {"namespace": "default"})
    sid = await running_session(k8s)
    token = f"ktl-session-{sid}"
    for _ in range(250):
        if any(r.kind == "begin" for r in k8s.client.progress_reports.get(token, [])):
            break
        await asyncio.sleep(0.02)
    k8s.client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(task, 10)
    assert result["state"] == "cancelled"
    # $/cancelRequest
    msg_id = "logs-to-cancel"
    fut = asyncio.ensure_future(
        k8s.client.protocol.send_request_async(
            lsp.WORKSPACE_EXECUTE_COMMAND,
            lsp.ExecuteCommandParams(command="ktl.logs", arguments=[{"pod": "p"}]),
            msg_id=msg_id,
        )
    )
    sid = await running_session(k8s)
    for _ in range(250):
        if "p/app hello" in await output_text(k8s, sid, plain=True):
            break
        await asyncio.sleep(0.02)
    k8s.client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))
    with contextlib.suppress(JsonRpcException):
        await asyncio.wait_for(fut, 10)
    session = await k8s.cmd("ktl.session.wait", {"sessionId": sid, "timeoutS": 10})
    assert session["state"] == "cancelled"
    for _ in range(250):  # the follow's connections are closed with it
        if not api.watches:
            break
        await asyncio.sleep(0.02)
    assert not api.watches
