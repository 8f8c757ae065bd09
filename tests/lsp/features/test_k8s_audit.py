"""The audit trail of an apply made through the real language server against the loopback API
server: the row names the context, the server and the namespace, the workspace and its git
state, and neither the kubeconfig's token nor the remote's credentials."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.cli.conftest import ktl_lsp
from tests.conftest import StartKtl
from tests.k8s_api import FakeApi, write_kubeconfig
from tests.lsp.features.test_k8s import APP, open_doc
from tests.sessions.test_provenance import SECRET, make_repo

KUBE_TOKEN = "kubeconfig-" + "c2VjcmV0LWJlYXJlci10b2tlbi1mb3ItdGVzdHM"


async def changes(store: Path, *args: str) -> list[dict[str, Any]]:
    done = await asyncio.to_thread(ktl_lsp, "--store", str(store), "audit", "-f", "json", *args)
    assert done.returncode == 0, done.stderr
    assert KUBE_TOKEN not in done.stdout and SECRET not in done.stdout
    rows: list[dict[str, Any]] = json.loads(done.stdout)["changes"]
    return rows


async def test_an_apply_is_audited_with_its_cluster_and_workspace(
    start_ktl: StartKtl, api: FakeApi, tmp_path: Path
) -> None:
    commit = make_repo(tmp_path, f"https://bob:{SECRET}@github.com/org/deploy.git")
    api.tokens[KUBE_TOKEN] = "admin"
    config = write_kubeconfig(tmp_path / "kubeconfig", api, token=KUBE_TOKEN)
    ktl = await start_ktl(env={"KUBECONFIG": str(config)})  # workspace folder: tmp_path
    uri = open_doc(ktl, tmp_path / "app.yaml", APP.replace("IMAGE", "nginx:1.27"))
    dry = await ktl.cmd("ktl.apply", {"uri": uri, "dryRun": True})  # nothing persisted
    applied = await ktl.cmd("ktl.apply", {"uri": uri, "namespace": "shop"})
    assert applied["state"] == "done"
    await ktl.cmd("ktl.diff", {"uri": uri, "namespace": "shop"})  # a read: not audited

    rows = await changes(ktl.store)
    for _ in range(50):  # git's part lands just after the session, off the server's loop
        if rows and "git" in rows[0]["where"]:
            break
        await asyncio.sleep(0.1)
        rows = await changes(ktl.store)
    [row] = rows  # the dry run and the read are left out
    assert dry["sessionId"] != row["sessionId"]
    assert row["sessionId"] == applied["sessionId"]
    assert row["operation"] == "apply" and row["state"] == "done" and row["exitCode"] == 0
    assert row["target"] == {
        "context": "fake",
        "cluster": "fake",
        "server": api.url,
        "namespace": "shop",
    }
    assert row["where"]["workspace"] == str(tmp_path)
    assert row["where"]["file"] == str(tmp_path / "app.yaml")
    assert row["where"]["git"] == {
        "root": str(tmp_path),
        "commit": commit,
        "branch": "main",
        "dirty": True,  # app.yaml was rewritten
        "remote": "https://github.com/org/deploy.git",
    }
    assert row["who"]["user"]
    assert await changes(ktl.store, "--context", "prod-*") == []
    assert [r["sessionId"] for r in await changes(ktl.store, "--context", "fa*")] == [
        applied["sessionId"]
    ]
