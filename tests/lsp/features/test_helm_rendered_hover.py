"""Hover on a template line: what it rendered to with the chart's default values, through a real
server and real renders; `.Values` paths keep their own hover, and an unsaved edit is shown once
it has rendered."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from lsprotocol import types as lsp

from tests.conftest import Ktl
from tests.lsp.features.test_diagnostics import Publishes, edit, open_doc
from tests.lsp.features.test_helm import FIXTURES, helm_diagnostics
from tests.lsp.features.test_hover import hover

pytest.importorskip("helm_python")


async def _hover_until(ktl: Ktl, uri: str, line: int, character: int, wanted: str) -> str:
    for _ in range(100):
        found = await hover(ktl, uri, line, character)
        if found is not None:
            assert isinstance(found.contents, lsp.MarkupContent)
            if wanted in found.contents.value:
                return found.contents.value
        await asyncio.sleep(0.05)
    raise AssertionError(f"no hover with {wanted!r} on line {line}")


async def test_hover_shows_what_a_template_line_rendered_to(ktl: Ktl, tmp_path: Path) -> None:
    web = Path(shutil.copytree(FIXTURES / "web", tmp_path / "web"))
    pubs = Publishes(ktl)
    uri = open_doc(ktl, web / "templates" / "service.yaml")
    await pubs.until(
        (web / "templates" / "ingress.yaml").as_uri(), lambda p: bool(helm_diagnostics(p))
    )  # the chart has rendered
    labels = await _hover_until(ktl, uri, 7, 2, "app.kubernetes.io/name")
    assert labels == (
        "Rendered (values.yaml):\n\n```yaml\n"
        "    app.kubernetes.io/name: web\n"
        "    app.kubernetes.io/instance: release-name\n```"
    )
    port = await _hover_until(ktl, uri, 9, 4, "port")
    assert port == "Rendered (values.yaml):\n\n```yaml\n    - port: 80\n```"
    # on the .Values path itself: the values hover, not the rendered lines
    values = await hover(ktl, uri, 9, 22)
    assert values is not None and isinstance(values.contents, lsp.MarkupContent)
    assert "Rendered" not in values.contents.value and "80" in values.contents.value
    edit(ktl, uri, 2, 9, 12, 38, "8080")
    port = await _hover_until(ktl, uri, 9, 4, "8080")
    assert port.endswith("    - port: 8080\n```")
