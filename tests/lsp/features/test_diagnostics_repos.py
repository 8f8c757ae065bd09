"""Diagnostics through the real server on the shapes of public repositories: list documents
(kube-prometheus), nested stacks (ktl's testdata), kustomize patches and install variants
(Argo CD's manifests/)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from tests.checks.test_k8s_manifest import ROLE_BINDING_LIST
from tests.checks.test_ktl_stack import smoke
from tests.checks.test_kustomize import HA_KUSTOMIZATION, HA_PATCH, SERVER, SERVICE
from tests.conftest import StartKtl
from tests.lsp.features.test_diagnostics import Publishes, brief, codes, open_doc, workspace_checked

ERROR, HINT = lsp.DiagnosticSeverity.Error, lsp.DiagnosticSeverity.Hint


def files(root: Path, texts: dict[str, str]) -> None:
    for name, text in texts.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


async def test_list_items_are_checked_at_their_own_lines_and_are_objects(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    cms = "apiVersion: v1\nkind: ConfigMapList\nitems:\n- metadata: {name: cfg}\n  data: {a: 1}\n"
    files(tmp_path, {"rb.yaml": ROLE_BINDING_LIST, "cms.yaml": cms})
    ktl = await start_ktl()
    pubs = Publishes(ktl)
    await workspace_checked(ktl)
    rb = open_doc(ktl, tmp_path / "rb.yaml")
    cm = open_doc(ktl, tmp_path / "cms.yaml")
    assert not (await pubs.until(rb, lambda p: p.version == 1)).diagnostics
    params = await pubs.until(cm, lambda p: p.version == 1)
    assert brief(params.diagnostics) == [("k8s-schema", 4, 12, 4, 13, ERROR, "ktl")]
    found = await ktl.client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query="prometheus"))
    assert found is not None
    assert sorted(s.name for s in found) == ["RoleBinding/prometheus-k8s"] * 2


async def test_a_nested_stack_is_its_own_root(start_ktl: StartKtl, tmp_path: Path) -> None:
    root = smoke(tmp_path)
    ktl = await start_ktl()
    pubs = Publishes(ktl)
    await workspace_checked(ktl)
    basic = open_doc(ktl, root / "basic" / "stack.yaml")
    outer = open_doc(ktl, root / "stack.yaml")
    assert not (await pubs.until(basic, lambda p: p.version == 1)).diagnostics
    params = await pubs.until(outer, lambda p: p.version == 1)
    assert brief(params.diagnostics) == [
        ("stack-nested-root", 2, 6, 2, 11, lsp.DiagnosticSeverity.Information, "ktl")
    ]
    related = params.diagnostics[0].related_information
    assert related is not None and related[0].location.uri == (root / "basic/stack.yaml").as_uri()


async def test_kustomize_patches_and_install_variants(start_ktl: StartKtl, tmp_path: Path) -> None:
    m = tmp_path / "manifests"
    files(
        m,
        {
            "base/server/kustomization.yaml": "resources:\n- deployment.yaml\n",
            "base/server/deployment.yaml": SERVER,
            "ha/base/kustomization.yaml": HA_KUSTOMIZATION,
            "ha/base/overlays/argocd-server-deployment.yaml": HA_PATCH,
            "install.yaml": SERVER + "---\n" + SERVICE,
            "ha/install.yaml": SERVER + "---\n" + SERVICE,
        },
    )
    ktl = await start_ktl()
    pubs = Publishes(ktl)
    await workspace_checked(ktl)
    patch = open_doc(ktl, m / "ha/base/overlays/argocd-server-deployment.yaml")
    base = open_doc(ktl, m / "base/server/deployment.yaml")
    install = open_doc(ktl, m / "install.yaml")
    assert not (await pubs.until(patch, lambda p: p.version == 1)).diagnostics
    assert not (await pubs.until(install, lambda p: p.version == 1)).diagnostics
    params = await pubs.until(base, lambda p: p.version == 1)
    assert brief(params.diagnostics) == [("k8s-duplicate-resource", 3, 8, 3, 21, HINT, "ktl")]

    # The kustomization stops naming the patch: the patch file is re-published as an object.
    kustomization = m / "ha/base/kustomization.yaml"
    without = HA_KUSTOMIZATION.replace("- path: overlays/argocd-server-deployment.yaml\n", "")
    uri = open_doc(ktl, kustomization, without)
    params = await pubs.until(patch, lambda p: "k8s-schema" in codes(p))
    assert params.version == 1
    assert any(d.message == 'missing required field "selector" in spec' for d in params.diagnostics)
    assert not (await pubs.until(uri, lambda p: p.version == 1)).diagnostics
