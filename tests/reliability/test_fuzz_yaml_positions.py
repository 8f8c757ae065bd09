"""Fuzzing YAML position mapping: findings point at the right node, whatever the layout.

``tests/checks/test_workspace.py`` already checks that ranges of arbitrary YAML-ish text stay
inside the document. This goes further: a valid Deployment is laid out at random (block or
flow style, indentation, comments, CRLF, non-BMP characters before the error on the same line
and in earlier documents, extra documents before it) with one error injected at a random place
under a unique marker; the finding for it must cover exactly the marker's text (the scalar
with its quotes, or the key), in code points and in UTF-16 units.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ktl_lsp.checks import Workspace
from ktl_lsp.documents import LineIndex
from tests.reliability.conftest import count

WORD = st.text(alphabet="abcdefghijkmnpqrstuvwxyz", min_size=3, max_size=8)
FUNNY = st.sampled_from(["", "é", "😀", "日本", "a😀b", "\u200b"])


@st.composite
def manifests(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """(text, marker, expected code, expected severity); the marker occurs once in text."""
    ind = " " * draw(st.sampled_from([2, 4]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    fun = draw(FUNNY)
    kind = draw(st.sampled_from(["replicas", "unknown", "label"]))
    word = draw(WORD)
    if kind == "replicas":
        marker = draw(st.sampled_from(["{}", '"{}"', "'{}'"])).format("bad" + word + fun)
        code, severity = "k8s-schema", "error"
    elif kind == "unknown":
        marker = "zz" + word
        code, severity = "k8s-schema", "error"  # strict field validation (1.27+)
    else:
        marker = f'"a b{word}{fun}"'
        code, severity = "k8s-schema", "error"
    comment = draw(st.sampled_from(["", f"# note {fun}", f"#{fun}"]))
    labels = (
        f"{{app: web, tier: {marker}}}" if kind == "label" else "{app: web}"
    )  # the label case always puts the marker in the labels map
    flow_meta = draw(st.booleans())
    lines: list[str] = []
    for i in range(draw(st.integers(0, 3))):
        lines += [
            "apiVersion: v1",
            "kind: ConfigMap",
            f"metadata: {{name: cm{i}}}",
            f"data: {{k: 'v{fun}{i}'}}",
            "---",
        ]
    if comment:
        lines.append(comment)
    lines += ["apiVersion: apps/v1", "kind: Deployment"]
    if flow_meta:
        lines.append(f"metadata: {{name: web, labels: {labels}}}")
    else:
        lines += ["metadata:", f"{ind}name: web", f"{ind}labels: {labels}"]
    lines.append("spec:")
    spec = [
        f"replicas: {marker}" if kind == "replicas" else "replicas: 2",
        "selector: {matchLabels: {app: web}}",
        "template:",
        f"{ind}metadata: {{labels: {{app: web}}}}",
        f"{ind}spec:",
        f"{ind}{ind}containers: [{{name: web, image: 'nginx'}}]",
    ]
    if kind == "unknown":
        spec.insert(draw(st.integers(0, 2)), f"{marker}: 1")
    lines += [ind + s for s in spec]
    return eol.join(lines) + eol, marker, code, severity


def position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset)
    return line, offset - (text.rfind("\n", 0, offset) + 1)


def utf16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


@settings(max_examples=200, deadline=None)
@given(manifests())
def test_the_finding_covers_exactly_the_bad_node(case: tuple[str, str, str, str]) -> None:
    count("yaml positions (finding -> node)")
    text, marker, code, severity = case
    assert text.count(marker) == 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deploy.yaml"
        workspace = Workspace()
        workspace.update(path, text)
        findings = workspace.findings_for(path, "utf-32")
        findings16 = workspace.findings_for(path, "utf-16")
    start = text.index(marker)
    (sl, sc), (el, ec) = position(text, start), position(text, start + len(marker))
    hits = [
        f
        for f in findings
        if (f.range.start.line, f.range.start.character, f.range.end.line, f.range.end.character)
        == (sl, sc, el, ec)
    ]
    assert len(findings) == 1, [(f.code, f.message, f.range) for f in findings]
    assert hits and hits[0].code == code and hits[0].severity == severity, (
        [(f.code, f.message, f.range) for f in findings],
        (sl, sc, el, ec),
    )
    # The same finding in UTF-16 units: columns move by the surrogate pairs before them.
    line_text = text.split("\n")[sl]
    f16 = findings16[0]
    assert f16.range.start.character == utf16(line_text[:sc])
    assert f16.range.end.character == utf16(line_text[:ec])
    index = LineIndex(text)
    assert 0 <= f16.range.start.line <= f16.range.end.line < index.line_count()
