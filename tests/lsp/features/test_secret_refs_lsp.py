"""`secret://` diagnostics end to end: a real server, a controlled HOME, a fixed `.ktl.yaml`."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from tests.conftest import StartKtl
from tests.lsp.features.test_diagnostics import (
    Publishes,
    brief,
    open_doc,
    settled,
    workspace_checked,
    write,
)

VALUES = """\
image: nginx
password: secret://prod/db/password
token: secret:///api/token
"""


async def test_unconfigured_provider_then_fixed_ktl_yaml(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    # The default provider comes from the home config: `token` is fine only if HOME is used.
    write(home, ".ktl/config.yaml", "secrets:\n  defaultProvider: hv\n  providers:\n    hv: {type: vault}\n")  # fmt: skip
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    ktl_yaml = write(repo, ".ktl.yaml", "secrets:\n  providers:\n    dev: {type: vault}\n")
    write(repo, "chart/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    values = write(repo, "chart/values.yaml", VALUES)

    ktl = await start_ktl(env={"HOME": str(home)})
    pubs = Publishes(ktl)
    uri = open_doc(ktl, values)
    params = await pubs.until(uri, lambda p: p.version == 1)
    assert brief(params.diagnostics) == [
        ("helm-values-secret", 1, 10, 1, 35, lsp.DiagnosticSeverity.Error, "ktl")
    ]
    assert params.diagnostics[0].message == 'secret provider "prod" is not configured'
    await workspace_checked(ktl)  # the folder read must not race the fix below

    write(repo, "secrets/prod.yaml", "db:\n  password: hunter2\n")
    ktl_yaml.write_text("secrets:\n  providers:\n    prod: {type: file, path: secrets/prod.yaml}\n")
    ktl.client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams(
            changes=[lsp.FileEvent(uri=ktl_yaml.as_uri(), type=lsp.FileChangeType.Changed)]
        )
    )
    await settled(pubs, uri, lambda p: not p.diagnostics)
