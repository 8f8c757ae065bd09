"""``GET /api/v1/audit`` on a real gateway (loopback HTTP, real store): the token is required,
the filters are ``ktl-lsp audit``'s, and no secret is in the answer."""

from __future__ import annotations

from pathlib import Path

from ktl_lsp.sessions.manager import RunSpec
from tests.cli.test_audit import KUBE_TOKEN, PASSWORD, k8s_change
from tests.gateway.conftest import Served
from tests.sessions.test_provenance import SECRET, make_repo


async def test_audit_route(served: Served, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    commit = make_repo(repo, f"https://bob:{SECRET}@github.com/org/repo.git")
    m = served.manager
    prod = await k8s_change(
        m, "ktl apply", "prod-eu", server="https://10.0.0.1:6443", cwd=str(repo)
    )
    await k8s_change(m, "ktl rollout-restart", "dev", cwd=str(repo))
    await k8s_change(m, "ktl verify", "prod-eu")  # a read
    shell = m.start(
        RunSpec(
            argv=["sh", "-c", f"echo kubectl delete pod web --token {KUBE_TOKEN}"],
            command=f"kubectl delete pod web --token {KUBE_TOKEN} --password={PASSWORD}",
            cwd=str(repo),
        )
    )
    await shell.done

    refused = await served.anon.get("/api/v1/audit")
    assert refused.status_code == 401

    answer = await served.http.get("/api/v1/audit")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    changes = answer.json()["changes"]
    assert [c["operation"] for c in changes] == ["kubectl delete", "restart", "apply"]
    applied = changes[-1]
    assert applied["sessionId"] == prod
    assert applied["target"]["server"] == "https://10.0.0.1:6443"
    assert applied["where"]["git"]["commit"] == commit
    assert applied["where"]["git"]["remote"] == "https://github.com/org/repo.git"
    assert changes[0]["command"] == (
        "kubectl delete pod web --token [REDACTED secret-flag] --password=[REDACTED secret-flag]"
    )
    for secret in (SECRET, KUBE_TOKEN, PASSWORD):
        assert secret not in answer.text

    prod_only = await served.http.get("/api/v1/audit", params={"context": "prod-*"})
    assert [c["sessionId"] for c in prod_only.json()["changes"]] == [prod]
    one = await served.http.get("/api/v1/audit", params={"limit": "1", "since": "1h"})
    assert [c["operation"] for c in one.json()["changes"]] == ["kubectl delete"]
    later = await served.http.get("/api/v1/audit", params={"since": "2999-01-01"})
    assert later.json() == {"changes": []}

    bad = await served.http.get("/api/v1/audit", params={"since": "soon"})
    assert bad.status_code == 400 and bad.text.startswith("since: cannot read 'soon'")
    bad_limit = await served.http.get("/api/v1/audit", params={"limit": "-1"})
    assert bad_limit.status_code == 400 and bad_limit.text.startswith("limit:")
