"""Field paths to manifest ranges, and kubeconfig discovery."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from ktl_lsp.documents.yaml_parse import parse_text
from ktl_lsp.k8s.client import Cluster, load_kubeconfig
from ktl_lsp.k8s.errors import ConfigError
from ktl_lsp.k8s.fieldpath import Step, locate, parse_field_path

TEXT = textwrap.dedent(
    """\
    # leading comment
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: first}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels:
        app.kubernetes.io/name: web
    spec:
      template:
        spec:
          containers:
          - name: sidecar
            image: envoy
          - name: app
            image: nginx
            ports:
            - containerPort: 80
    """
)


def at(path: str, doc: int = 1) -> tuple[str, bool]:
    parsed = parse_text(TEXT)
    found = locate(parsed.documents[doc], path)
    line = TEXT.splitlines()[found.range.start.line]
    return line[found.range.start.character : found.range.end.character], found.exact


def test_parse_field_path() -> None:
    assert parse_field_path('.spec.containers[name="app"].ports[0].containerPort') == [
        Step(key="spec"),
        Step(key="containers"),
        Step(select=("name", "app")),
        Step(key="ports"),
        Step(index=0),
        Step(key="containerPort"),
    ]
    assert parse_field_path("metadata.labels[app.kubernetes.io/name]") == [
        Step(key="metadata"),
        Step(key="labels"),
        Step(key="app.kubernetes.io/name"),
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("spec.template.spec.containers[1].image", ("image", True)),
        (
            '.spec.template.spec.containers[name="app"].ports[0].containerPort',
            ("containerPort", True),
        ),
        ("metadata.labels[app.kubernetes.io/name]", ("app.kubernetes.io/name", True)),
        ("spec.template.spec.containers[0]", ("name", True)),
        ("spec.template.spec.containers[0].resources.limits", ("name", False)),
        ("spec.selector", ("spec", False)),
        ("status", ("kind", False)),
    ],
)
def test_locate(path: str, expected: tuple[str, bool]) -> None:
    assert at(path) == expected


def write(path: Path, data: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_kubeconfig_list_merges_first_wins(tmp_path: Path) -> None:
    a = write(
        tmp_path / "a",
        {
            "current-context": "dev",
            "contexts": [{"name": "dev", "context": {"cluster": "c1", "namespace": "team"}}],
            "clusters": [{"name": "c1", "cluster": {"server": "http://127.0.0.1:1"}}],
        },
    )
    b = write(
        tmp_path / "b",
        {
            "current-context": "prod",
            "contexts": [
                {"name": "dev", "context": {"cluster": "other"}},
                {"name": "prod", "context": {"cluster": "c2"}},
            ],
            "clusters": [
                {"name": "c1", "cluster": {"server": "http://127.0.0.1:2"}},
                {"name": "c2", "cluster": {"server": "https://prod.example:6443"}},
            ],
        },
    )
    config = load_kubeconfig({"KUBECONFIG": f"{a}:{tmp_path / 'missing'}:{b}"})
    assert config.current == "dev"
    assert [c.to_lsp() for c in config.contexts] == [
        {"name": "dev", "cluster": "c1", "namespace": "team"},
        {"name": "prod", "cluster": "c2", "namespace": None},
    ]
    assert Cluster(config).default_namespace == "team"
    # each context's API server, the first file naming a cluster winning (sessions record it)
    assert [c.server for c in config.contexts] == [
        "http://127.0.0.1:1",
        "https://prod.example:6443",
    ]
    with pytest.raises(ConfigError, match='context "nope" is not in the kubeconfig'):
        Cluster(config, "nope")


def test_no_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no kubeconfig found"):
        load_kubeconfig({"HOME": str(tmp_path)})
