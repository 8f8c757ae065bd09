"""``ktl-lsp audit``: changes recorded by real runs in a real git repository, listed in text,
JSON and CSV, filtered by time and context, and never a secret among them."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ktl_lsp.sessions.manager import LiveSession, RunSpec, SessionManager, TaskOutcome
from ktl_lsp.sessions.model import State
from tests.cli.conftest import ktl_lsp
from tests.sessions.test_provenance import SECRET, make_repo

KUBE_TOKEN = "kube-" + "Zm9vYmFyYmF6cXV4cXV1eHF1dXg0Mg"
PASSWORD = "hunter2-not-shaped-like-a-token"


def stub_tool(bin_dir: Path, name: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text('#!/bin/sh\necho "$0 $*" | sed "s/^.*\\///"\n')
    tool.chmod(0o755)


def run(store: Path, repo: Path, bin_dir: Path, *argv: str) -> None:
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = ktl_lsp("--store", str(store), "run", "--quiet", "--", *argv, cwd=repo, env=env)
    assert done.returncode == 0, done.stderr


async def k8s_change(manager: SessionManager, command: str, context: str, **meta: str) -> str:
    """A Kubernetes change as the language server records one (kind k8s, its meta)."""

    async def work(live: LiveSession) -> TaskOutcome:
        live.write(f"{command} done\r\n")
        return TaskOutcome(State.DONE, 0)

    spec = RunSpec(
        argv=[],
        command=command,
        kind="k8s",
        title=command,
        meta={"kubeContext": context, "cluster": context, "namespace": "shop", **meta},
    )
    live = manager.start_task(spec, work)
    await live.done
    return live.id


def audit(store: Path, *args: str) -> str:
    done = ktl_lsp("--store", str(store), "audit", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_audit_lists_changes_with_who_where_and_no_secret(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    commit = make_repo(repo, f"https://bob:{SECRET}@github.com/org/repo.git")
    (repo / "app.yaml").write_text("kind: Secret\n")  # dirty
    store = tmp_path / "s.db"
    bin_dir = tmp_path / "bin"
    stub_tool(bin_dir, "kubectl")
    stub_tool(bin_dir, "helm")
    run(store, repo, bin_dir, "kubectl", "get", "pods")  # a read: not listed
    run(
        store,
        repo,
        bin_dir,
        "env",
        f"GITHUB_TOKEN={SECRET}",
        "kubectl",
        "apply",
        "-f",
        "app.yaml",
        f"--token={KUBE_TOKEN}",
    )
    run(store, repo, bin_dir, "helm", "upgrade", "web", "./chart", "--password", PASSWORD)
    manager = SessionManager.open(store)
    try:
        prod = await k8s_change(
            manager, "ktl delete", "prod-eu", server=f"https://admin:{SECRET}@10.0.0.1:6443"
        )
        await k8s_change(manager, "ktl logs", "prod-eu")  # a read
        await k8s_change(manager, "ktl apply", "prod-eu", dryRun="yes")  # nothing persisted
        await k8s_change(manager, "ktl scale", "dev")
        await manager.flush()
    finally:
        manager.close()

    data = json.loads(audit(store, "--format", "json"))["changes"]
    assert [c["operation"] for c in data] == ["scale", "delete", "helm upgrade", "kubectl apply"]
    applied = data[-1]
    assert applied["state"] == "done" and applied["exitCode"] == 0
    assert applied["who"]["user"] and applied["where"]["host"]
    assert applied["where"]["workspace"] == str(repo)
    assert applied["where"]["git"] == {
        "root": str(repo),
        "commit": commit,
        "branch": "main",
        "dirty": True,
        "remote": "https://github.com/org/repo.git",
    }
    assert applied["command"] == (
        "env GITHUB_TOKEN=[REDACTED] kubectl apply -f app.yaml --token=[REDACTED secret-flag]"
    )
    deleted = data[1]
    assert deleted["sessionId"] == prod
    assert deleted["target"] == {
        "context": "prod-eu",
        "cluster": "prod-eu",
        "server": "https://10.0.0.1:6443",
        "namespace": "shop",
    }

    text = audit(store)
    table = text.splitlines()
    assert table[0].split()[:4] == ["WHEN", "OPERATION", "OUTCOME", "WHO"]
    assert len(table) == 5 and "prod-eu/shop" in table[2] and "main@" + commit[:8] in table[4]

    rows = list(csv.DictReader(io.StringIO(audit(store, "--format", "csv"))))
    assert [r["operation"] for r in rows] == [c["operation"] for c in data]
    assert rows[-1]["gitRemote"] == "https://github.com/org/repo.git"
    assert rows[-1]["gitDirty"] == "yes" and rows[1]["server"] == "https://10.0.0.1:6443"

    for shown in (text, json.dumps(data), audit(store, "--format", "csv")):
        for secret in (SECRET, KUBE_TOKEN, PASSWORD, "bob:"):
            assert secret not in shown

    prod_only = json.loads(audit(store, "--context", "prod-*", "--format", "json"))
    assert [c["sessionId"] for c in prod_only["changes"]] == [prod]
    future = json.loads(audit(store, "--since", "2999-01-01", "--format", "json"))
    assert future == {"changes": []}
    assert len(json.loads(audit(store, "--since", "1h", "--format", "json"))["changes"]) == 4
    assert audit(store, "--since", "2999-01-01") == ""


def test_audit_refuses_a_bad_since_and_a_missing_store(tmp_path: Path) -> None:
    bad = ktl_lsp("--store", str(tmp_path / "s.db"), "audit", "--since", "soon")
    assert bad.returncode == 2 and "cannot read 'soon' as a time" in bad.stderr
    missing = ktl_lsp("--store", str(tmp_path / "none.db"), "audit")
    assert missing.returncode == 1 and "no session store" in missing.stderr
