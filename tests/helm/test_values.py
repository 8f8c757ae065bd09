"""Values files as a path index (places, types, defaults) and values.schema.json descriptions."""

from __future__ import annotations

import json

from ktl_lsp.documents.positions import Range
from ktl_lsp.helm.values import index_values, schema_info

VALUES = """\
# defaults
image:
  repository: nginx
  tag: "1.25"
replicas: 3
resources: {}
podAnnotations:
ports: [80, 443]
anchors: &a {x: 1}
merged:
  <<: *a
  y: 2
"""


def test_keys_with_places_types_and_defaults() -> None:
    index = index_values(VALUES)
    brief = {
        ".".join(p): (e.type, e.default, e.leaf, e.open) for p, e in sorted(index.entries.items())
    }
    assert brief == {
        "anchors": ("object", "{…}", False, False),
        "anchors.x": ("integer", "1", True, False),
        "image": ("object", "{…}", False, False),
        "image.repository": ("string", '"nginx"', True, False),
        "image.tag": ("string", '"1.25"', True, False),
        "merged": ("object", "{…}", False, False),
        "merged.x": ("integer", "1", True, False),
        "merged.y": ("integer", "2", True, False),
        "podAnnotations": ("null", "null", True, True),
        "ports": ("array", "[80, 443]", True, False),
        "replicas": ("integer", "3", True, False),
        "resources": ("object", "{}", True, True),
    }
    tag = index.entries[("image", "tag")]
    assert tag.key_range == Range.of(3, 2, 3, 5)
    assert tag.value_range == Range.of(3, 7, 3, 13)
    assert [e.path[-1] for e in index.children(("image",))] == ["repository", "tag"]


def test_defined_paths_include_what_open_maps_leave_to_the_user() -> None:
    index = index_values(VALUES)
    assert index.defines(("image", "tag"))
    assert index.defines(("resources", "limits", "cpu"))  # below `{}`
    assert index.defines(("podAnnotations", "x"))  # below null
    assert not index.defines(("image", "tagg"))
    assert not index.defines(("replicas", "x"))  # below a scalar: a nil pointer in Helm
    assert index.defines(())


def test_broken_or_odd_files_give_an_empty_index() -> None:
    for text in ("a: [unclosed\n", "- a\n- b\n", "", "\x00\x01", "a: {{ .Values.x }}\n"):
        index = index_values(text)
        assert isinstance(index.entries, dict)
    assert index_values("- a\n").parsed is False
    assert index_values("").parsed is True


SCHEMA = {
    "type": "object",
    "properties": {
        "image": {
            "type": "object",
            "properties": {"tag": {"$ref": "#/definitions/tag"}},
        },
        "labels": {
            "type": "object",
            "additionalProperties": {"type": "string", "title": "A label"},
        },
    },
    "definitions": {
        "tag": {"type": "string", "description": "The image tag.", "default": "latest"}
    },
}


def test_schema_descriptions_follow_properties_refs_and_additional_properties() -> None:
    text = json.dumps(SCHEMA)
    tag = schema_info(text, ("image", "tag"))
    assert tag is not None
    assert (tag.description, tag.type, tag.default) == ("The image tag.", "string", '"latest"')
    label = schema_info(text, ("labels", "team"))
    assert label is not None and label.description == "A label"
    assert schema_info(text, ("image", "nope")) is None
    assert schema_info("{not json", ("image",)) is None
    assert schema_info(None, ("image",)) is None


def test_keys_left_in_comments_are_documented() -> None:
    text = """\
notifier:
  extraArgs: []
  # community: public
  # communitySecret:
  #   name: x
sasl:
  scram:
    enabled: false
    # mechanism: plain
## Note: the rest is optional
#top: 1
"""
    index = index_values(text)
    assert sorted(index.documented) == [
        ("Note",),
        ("notifier", "community"),
        ("notifier", "communitySecret"),
        ("notifier", "communitySecret", "name"),
        ("sasl", "scram", "mechanism"),
        ("top",),
    ]
    assert index.defines(("notifier", "communitySecret", "name"))
    assert not index.defines(("notifier", "extraArgs", "community"))
