"""Completion, hover, definition and references on a chart's text (no server): the contexts a
template gives (`with`, variables, strings) and what a values key's references include."""

from __future__ import annotations

from pathlib import Path

from ktl_lsp.documents.positions import Position
from ktl_lsp.helm.chart_text import chart_text
from ktl_lsp.helm.editing import complete, definition, hover, references
from tests.helm.test_values_refs import write_chart

VALUES = """\
image:
  repository: nginx
resources:
  limits:
    cpu: 100m
probe: {}
"""

TEMPLATE = """\
a: {{ toYaml .Values.resources }}
b: {{ .Values.resources.limits.cpu }}
{{- $img := .Values.image }}
c: {{ $img.repository }}
d: {{ .Values.probe.path }}
e: {{ printf "%s" .Values.image.repository }}
"""


def chart(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = write_chart(
        tmp_path / "c",
        {
            "Chart.yaml": "apiVersion: v2\nname: c\nversion: 1.0.0\n",
            "values.yaml": VALUES,
            "values-prod.yaml": "image:\n  tag: v2\n",
            "templates/t.yaml": TEMPLATE,
        },
    ).resolve()
    return root, root / "templates" / "t.yaml", root / "values.yaml"


def labels(root: Path, path: Path, text: str, line: int, character: int) -> list[str]:
    return [
        c.label
        for c in complete(chart_text(root, lambda p: None), path, text, Position(line, character))
    ]


def test_completion_follows_variables_and_skips_strings(tmp_path: Path) -> None:
    root, template, _ = chart(tmp_path)
    typing = (
        TEMPLATE
        + 'f: {{ $img. }}\ng: {{ printf "%s.Values. }}\nh: {{ with .Values.resources }}{{ .l }}{{ end }}\n'
    )
    assert labels(root, template, typing, 6, len("f: {{ $img.")) == ["repository", "tag"]
    assert labels(root, template, typing, 7, len('g: {{ printf "%s.Values.')) == []
    assert labels(root, template, typing, 8, len("h: {{ with .Values.resources }}{{ .l")) == [
        "limits"
    ]
    # Between actions: nothing.
    assert labels(root, template, typing, 0, 1) == []


def test_references_of_a_key_include_reads_above_and_below_it(tmp_path: Path) -> None:
    root, _, values = chart(tmp_path)
    found = chart_text(root, lambda p: None)
    limits = references(found, values, VALUES, Position(3, 4), declaration=False)
    lines = TEMPLATE.splitlines()
    assert [
        (p.path.name, lines[p.range.start.line][p.range.start.character : p.range.end.character])
        for p in limits
    ] == [
        ("t.yaml", ".Values.resources"),
        ("t.yaml", ".Values.resources.limits.cpu"),
    ]
    # On a value (not the key): the same key.
    repository = references(found, values, VALUES, Position(1, 16), declaration=True)
    assert [(p.path.name, p.range.start.line) for p in repository] == [
        ("values.yaml", 1),
        ("t.yaml", 2),
        ("t.yaml", 3),
        ("t.yaml", 5),
    ]


def test_hover_and_definition_of_paths_a_file_lacks(tmp_path: Path) -> None:
    root, template, _ = chart(tmp_path)
    found = chart_text(root, lambda p: None)
    text = TEMPLATE
    at = Position(4, len("d: {{ .Values.probe.pa"))
    answer = hover(found, template, text, at)
    assert answer is not None
    assert answer.markdown.splitlines() == [
        "**.Values.probe.path**",
        "",
        "- `values.yaml`: not set",
    ]
    # The deepest key the values file has: `probe`.
    assert [(p.path.name, p.range.start.line) for p in definition(found, template, text, at)] == [
        ("values.yaml", 5)
    ]
    tag = Position(3, len("c: {{ $img.rep"))
    assert [(p.path.name, p.range.start.line) for p in definition(found, template, text, tag)] == [
        ("values.yaml", 1),
        ("values-prod.yaml", 0),
    ]
