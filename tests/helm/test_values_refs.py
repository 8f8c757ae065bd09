"""Rule helm-values-ref: unguarded references to values no file defines (warnings at the
reference) and values.yaml keys no template reads (hints, tagged unnecessary)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from ktl_lsp.checks import check_paths
from tests.checks.conftest import brief

CHARTS = Path(__file__).parent / "charts"

#: A chart with seeded mistakes at known places (see the comments in the texts).
SHOP = {
    "Chart.yaml": """\
        apiVersion: v2
        name: shop
        version: 0.1.0
        dependencies:
          - name: redis
            version: 1.0.0
            repository: https://charts.example.com
        """,
    "values.yaml": """\
        image:
          repository: nginx
          tag: "1.25"
        replicas: 2
        unusedKey: true
        global:
          region: eu
        redis:
          port: 6379
        config:
          greeting: "hello {{ .Values.name }}"
        name: shop
        """,
    "values-prod.yaml": "replicas: 5\nextra:\n  debug: true\n",
    "values.schema.json": """\
        {"type": "object", "properties": {"image": {"type": "object", "properties":
          {"tag": {"type": "string", "description": "The image tag to run."}}}}}
        """,
    "templates/_helpers.tpl": """\
        {{- define "shop.name" -}}
        {{ .Chart.Name }}-{{ .Release.Name }}
        {{- end }}
        """,
    "templates/deploy.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ include "shop.name" . }}
        spec:
          replicas: {{ .Values.replicas }}
          template:
            spec:
              containers:
                - image: "{{ .Values.image.repository }}:{{ .Values.image.tagg }}"
                  {{- if .Values.debug }}
                  args: [--debug]
                  {{- end }}
                  env: [{name: X, value: {{ .Values.extra.debug | quote }}}]
                  port: {{ .Values.port | default 80 }}
                  data: {{ tpl .Values.config.greeting . }}
        """,
}


def write_chart(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_seeded_mistakes_at_their_places(tmp_path: Path) -> None:
    chart = write_chart(tmp_path / "shop", SHOP)
    results = check_paths([chart])
    deploy = results[(chart / "templates" / "deploy.yaml").resolve()]
    assert brief(deploy) == [("helm-values-ref", 9, 52, 9, 70, "warning")]
    assert ".Values.image.tagg is not defined in values.yaml, values-prod.yaml" in deploy[0].message
    values = results[(chart / "values.yaml").resolve()]
    assert brief(values) == [
        ("helm-values-ref", 2, 2, 2, 5, "hint"),  # image.tag: the template reads tagg
        ("helm-values-ref", 4, 0, 4, 9, "hint"),  # unusedKey
    ]
    assert all(f.tags == ("unnecessary",) for f in values)
    assert values[1].message == "unusedKey is not read by any template of this chart"
    # Other values files are not told what is unused; `global` and `redis` (a dependency)
    # belong to other charts; `name` is read by a tpl string in values.yaml.
    assert results[(chart / "values-prod.yaml").resolve()] == []


def test_a_real_chart_has_no_findings(tmp_path: Path) -> None:
    """The chart `helm create` writes: helpers, with/range/if guards, NOTES.txt, `$`."""
    chart = shutil.copytree(CHARTS / "tplweb", tmp_path / "web")
    results = check_paths([chart])
    assert len(results) == 8  # Chart.yaml, values.yaml, _helpers.tpl, five YAML templates
    assert {str(p): f for p, f in results.items() if f} == {}


def test_library_charts_and_charts_without_values_are_left_alone(tmp_path: Path) -> None:
    template = "a: {{ .Values.anything }}\n"
    lib = write_chart(
        tmp_path / "lib",
        {
            "Chart.yaml": "apiVersion: v2\nname: lib\nversion: 1.0.0\ntype: library\n",
            "values.yaml": "x: 1\n",
            "templates/_a.yaml": template,
        },
    )
    bare = write_chart(
        tmp_path / "bare",
        {
            "Chart.yaml": "apiVersion: v2\nname: bare\nversion: 1.0.0\n",
            "templates/a.yaml": template,
        },
    )
    results = check_paths([lib, bare])
    assert {str(p): f for p, f in results.items() if f} == {}


def test_a_subchart_s_values_may_come_from_its_parent(tmp_path: Path) -> None:
    parent = write_chart(
        tmp_path / "app",
        {
            "Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
            "values.yaml": "db:\n  password: x\n",
            "charts/db/Chart.yaml": "apiVersion: v2\nname: db\nversion: 1.0.0\n",
            "charts/db/values.yaml": "port: 5432\n",
            "charts/db/templates/s.yaml": "p: {{ .Values.port }}\nq: {{ .Values.password }}\n"
            "r: {{ .Values.user }}\n",
        },
    )
    results = check_paths([parent])
    sub = results[(parent / "charts/db/templates/s.yaml").resolve()]
    assert brief(sub) == [("helm-values-ref", 2, 6, 2, 18, "warning")]
    assert results[(parent / "values.yaml").resolve()] == []  # db is a subchart's name


def test_optional_objects_and_documented_keys(tmp_path: Path) -> None:
    """Fields of an object the template tests and the values leave out, and keys the values
    file documents in comments, are the user's to give: no warning. A typo below an object
    the values do define still is one."""
    chart = write_chart(
        tmp_path / "opt",
        {
            "Chart.yaml": "apiVersion: v2\nname: opt\nversion: 1.0.0\n",
            "values.yaml": """\
                tls:
                  enabled: false
                  # secretName: my-tls
                ingress:
                  host: a.example.com
                """,
            "templates/a.yaml": """\
                {{- if .Values.auth }}
                user: {{ .Values.auth.user }}
                {{- end }}
                {{- if .Values.tls.enabled }}
                secret: {{ .Values.tls.secretName }}
                {{- end }}
                {{- if .Values.ingress }}
                host: {{ .Values.ingress.hots }}
                {{- end }}
                on: {{ and .Values.x (not .Values.y) }}
                """,
        },
    )
    findings = check_paths([chart])[(chart / "templates" / "a.yaml").resolve()]
    assert brief(findings) == [("helm-values-ref", 7, 9, 7, 29, "warning")]
