"""A template read as YAML with actions: literal keys with their paths, the actions that write
YAML with the path their output lands in, and `define` bodies."""

from __future__ import annotations

import textwrap

from ktl_lsp.helm.mapping import read_template

TEMPLATE = textwrap.dedent(
    """\
    {{- define "local.extra" -}}
    extra: true
    {{- end }}
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: {{ .Release.Name }}
      {{- with .Values.meta }}
      annotations:
        {{- toYaml .annotations | nindent 4 }}
      {{- end }}
    data:
      script.sh: |
        key: not a key
        {{ .Values.script }}
      {{- range $k, $v := .Values.settings }}
      {{ $k }}: {{ $v | quote }}
      {{- end }}
      inline: {{ .Values.inline | toYaml | nindent 4 }}
    items:
      - name: first
      {{- include "local.items" . | nindent 2 }}
    ---
    apiVersion: v1
    kind: Secret
    """
)


def test_literal_keys_have_their_paths_and_lines() -> None:
    template = read_template(TEMPLATE)
    keys = {entry.line: entry.path for entries in template.main.keys.values() for entry in entries}
    assert keys == {
        3: ("apiVersion",),
        4: ("kind",),
        5: ("metadata",),
        6: ("metadata", "name"),
        8: ("metadata", "annotations"),
        11: ("data",),
        12: ("data", "script.sh"),
        18: ("data", "inline"),
        19: ("items",),
        20: ("items", 0, "name"),
        23: ("apiVersion",),
        24: ("kind",),
    }  # not the block scalar's text (13), nor the key an action makes (16)
    assert template.main.kinds == {0: "ConfigMap", 1: "Secret"}
    assert template.first_line == 3  # past the define


def test_actions_writing_yaml_have_the_path_their_output_lands_in() -> None:
    template = read_template(TEMPLATE)
    emitters = [
        (e.line, e.parent, e.kind, e.subject, e.values_path) for e in template.main.emitters
    ]
    assert emitters == [
        (
            9,
            ("metadata", "annotations"),
            "toYaml",
            ".Values.meta.annotations",
            ("meta", "annotations"),
        ),
        (18, ("data", "inline"), "toYaml", ".Values.inline", ("inline",)),
        (21, ("items",), "include", "local.items", None),
    ]
    assert ("items",) in template.main.dynamic  # an include adds items after the literal one


def test_define_bodies_are_read_apart_from_the_template() -> None:
    template = read_template(TEMPLATE)
    line, body = template.defines["local.extra"]
    assert line == 0
    assert [(e.line, e.path) for entries in body.keys.values() for e in entries] == [
        (1, ("extra",))
    ]
