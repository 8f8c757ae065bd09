"""The Go-template scanner: actions, `.Values` paths with their exact spans and guards,
defines and calls, and broken text answered without raising."""

from __future__ import annotations

import random

from ktl_lsp.documents.positions import Position
from ktl_lsp.helm.templates import ROOT, scan


def refs(text: str) -> list[tuple[str, str, bool]]:
    """(path, text of the reference, guarded) of each `.Values` reference."""
    found = scan(text)
    return [(".".join(r.path), text[r.start : r.end], r.guarded) for r in found.refs]


def test_actions_with_trim_markers_comments_and_strings() -> None:
    text = '{{- .Values.a -}}\n{{/* {{ .Values.no }} */}}\n{{ "}}" }} {{ `{{` }}\n{{- /* c */ -}}'
    found = scan(text)
    spans = [(text[a.start : a.end], a.comment, a.closed) for a in found.actions]
    assert spans == [
        ("{{- .Values.a -}}", False, True),
        ("{{/* {{ .Values.no }} */}}", True, True),
        ('{{ "}}" }}', False, True),
        ("{{ `{{` }}", False, True),
        ("{{- /* c */ -}}", True, True),
    ]
    assert refs(text) == [("a", ".Values.a", False)]


def test_paths_by_field_root_variable_and_index_with_spans() -> None:
    text = (
        'a: {{ .Values.image.tag }}\nb: {{ $.Values.x.y }}\nc: {{ index .Values "my-key" "sub" }}\n'
    )
    found = scan(text)
    assert refs(text) == [
        ("image.tag", ".Values.image.tag", False),
        ("x.y", "$.Values.x.y", False),
        ("my-key.sub", 'index .Values "my-key" "sub"', False),
    ]
    tag = found.refs[0].segments[1]
    assert (tag.key, found.position(tag.start), found.position(tag.end)) == (
        "tag",
        Position(0, 20),
        Position(0, 23),
    )
    quoted = found.refs[2].segments[0]
    assert text[quoted.start : quoted.end] == '"my-key"'


def test_guards_by_functions_conditions_and_blocks() -> None:
    text = """\
{{ .Values.a | default "x" }}
{{ required "give b" .Values.b }}
{{ default (printf "%s" .Values.c) "d" }}
{{ if .Values.e.enabled }}{{ .Values.e.enabled }}{{ .Values.e.host }}{{ end }}
{{ if hasKey .Values.f "g" }}{{ .Values.f.g }}{{ end }}
{{ if empty .Values.h }}{{ end }}
{{ .Values.i }}
"""
    assert refs(text) == [
        ("a", ".Values.a", True),
        ("b", ".Values.b", True),
        ("c", ".Values.c", True),
        ("e.enabled", ".Values.e.enabled", True),
        ("e.enabled", ".Values.e.enabled", True),
        ("e.host", ".Values.e.host", False),
        ("f", ".Values.f", True),
        ("f.g", ".Values.f.g", True),
        ("h", ".Values.h", True),
        ("i", ".Values.i", False),
    ]


def test_with_rebinds_dot_range_does_not_and_variables_carry_paths() -> None:
    text = """\
{{- with .Values.pod }}{{ .annotations }}{{ toYaml . }}{{ $.Values.top }}{{- end }}
{{- range .Values.items }}{{ .name }}{{ end }}
{{- $cfg := .Values.config }}{{ $cfg.port }}
{{- $root := . }}{{ with .Values.a }}{{ $root.Values.b }}{{ end }}
{{ .Values.after }}
"""
    assert refs(text) == [
        ("pod", ".Values.pod", True),
        ("pod.annotations", ".annotations", False),
        ("pod", ".", True),
        ("top", "$.Values.top", False),
        ("items", ".Values.items", True),
        ("config", ".Values.config", False),
        ("config.port", "$cfg.port", False),
        ("a", ".Values.a", True),
        ("b", "$root.Values.b", False),
        ("after", ".Values.after", False),
    ]
    found = scan(text)
    last = found.actions[-1]
    assert found.contexts[last.start][0] == ROOT


def test_defines_and_calls() -> None:
    text = """\
{{- define "app.name" -}}
{{ .Chart.Name | trunc 63 }}
{{- end }}
{{- define "app.labels" }}app: {{ include "app.name" . }}{{ end }}
name: {{ include "app.name" . }}
{{ template "app.labels" . }}
"""
    found = scan(text)
    defines = [
        (d.name, text[d.name_start : d.name_end], text[d.body_start : d.body_end])
        for d in found.defines
    ]
    assert defines == [
        ("app.name", "app.name", "\n{{ .Chart.Name | trunc 63 }}\n"),
        ("app.labels", "app.labels", 'app: {{ include "app.name" . }}'),
    ]
    calls = [(c.kind, c.name, found.position(c.start)) for c in found.calls]
    assert calls == [
        ("include", "app.name", Position(3, 42)),
        ("include", "app.name", Position(4, 17)),
        ("template", "app.labels", Position(5, 12)),
    ]
    assert [f.name for f in found.functions] == ["trunc", "include", "include"]


def test_an_unclosed_action_ends_at_its_line() -> None:
    text = "a: {{ .Values.image.\nb: {{ .Values.b }}\nc: {{ if .Values.c\n"
    found = scan(text)
    assert [(text[a.start : a.end], a.closed) for a in found.actions] == [
        ("{{ .Values.image.", False),
        ("{{ .Values.b }}", True),
        ("{{ if .Values.c", False),
    ]
    assert [r.path for r in found.refs] == [("image",), ("b",), ("c",)]
    assert found.action_at(len("a: {{ .Values.image.")) is found.actions[0]


def test_broken_text_never_raises() -> None:
    pieces = [
        "{{",
        "}}",
        "{{-",
        "-}}",
        '"',
        "`",
        "/*",
        "*/",
        "(",
        ")",
        "|",
        ".Values.",
        "$",
        "end",
        "if",
        "with",
        "define",
        "index",
        ":=",
        "\n",
        " ",
        "a",
        "'",
        "\\",
    ]
    rng = random.Random(7)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        found = scan(text)
        for action in found.actions:
            assert 0 <= action.start <= action.end <= len(text)
        for ref in found.refs:
            assert 0 <= ref.start <= ref.end <= len(text)


def test_range_variables_are_elements_not_the_values_they_shadowed() -> None:
    text = "{{ $v := .Values.a }}{{ range $i, $v := .Values.list }}{{ $v.x }}{{ end }}"
    assert refs(text) == [("a", ".Values.a", False), ("list", ".Values.list", True)]
