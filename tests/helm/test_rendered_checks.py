"""Rendered manifests checked with the Kubernetes checkers, each finding at the template line
that wrote it. Charts are rendered for real with the helm extra (Helm's Go SDK)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from ktl_lsp.checks.findings import Finding
from ktl_lsp.documents.positions import Range
from ktl_lsp.helm.model import Rendered, RenderRequest
from ktl_lsp.helm.rendered_checks import RenderedChecker, check_rendered

helm_python = pytest.importorskip("helm_python")

CHARTS = Path(__file__).parent / "charts"
K8S = "1.31"


def render(chart: Path, *values_files: str, label: str | None = None) -> Rendered:
    """The chart rendered as `helm template -f ...` would, keys relative to the chart."""
    values: dict[str, object] = {}
    for name in values_files:
        values.update(yaml.safe_load((chart / name).read_text()) or {})
    with helm_python.Chart.load(str(chart)) as loaded:
        out = loaded.render(values, name="rel", namespace="apps")
    request = RenderRequest(
        chart,
        tuple(Path(v) for v in values_files),
        release="rel",
        namespace="apps",
        label=label or (values_files[-1] if values_files else "values.yaml"),
    )
    return Rendered(request, {key.split("/", 1)[1]: text for key, text in out.items()})


def write_chart(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: t\nversion: 0.1.0\n")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def at(findings: list[Finding], line: int) -> list[Finding]:
    return [f for f in findings if f.range.start.line == line]


def span(finding: Finding) -> tuple[int, int, int]:
    rng = finding.range
    assert rng.start.line == rng.end.line
    return rng.start.line, rng.start.character, rng.end.character


@pytest.fixture(scope="module")
def seeded() -> dict[Path, list[Finding]]:
    chart = CHARTS / "seeded"
    renders = [render(chart), render(chart, "ci/prod-values.yaml")]
    return check_rendered(chart, renders, K8S)


def test_a_misspelt_literal_key_is_at_its_template_line_with_the_rename(
    seeded: dict[Path, list[Finding]],
) -> None:
    deployment = (CHARTS / "seeded/templates/deployment.yaml").resolve()
    (finding,) = at(seeded[deployment], 7)  # `  replica: {{ .Values.replicaCount }}`
    assert span(finding) == (7, 2, 9)
    assert finding.code == "helm-template-schema"
    assert finding.severity == "error"
    assert finding.message == (
        'unknown field "spec.replica" (did you mean "replicas"?) '
        "(values: values.yaml, ci/prod-values.yaml)"
    )
    (fix,) = finding.fixes
    assert [(e.range, e.new_text) for e in fix.edits] == [(Range.of(7, 2, 7, 9), "replicas")]


def test_a_quoted_integer_is_at_the_quoted_value_once_for_both_renders(
    seeded: dict[Path, list[Finding]],
) -> None:
    deployment = (CHARTS / "seeded/templates/deployment.yaml").resolve()
    (finding,) = at(seeded[deployment], 22)  # `containerPort: "{{ .Values.port }}"`
    assert span(finding) == (22, 29, 49)
    assert finding.code == "helm-template-schema"
    assert finding.message.split("\n") == [
        "spec.template.spec.containers[0].ports[0].containerPort: expected integer, "
        'got string "8080" (values: values.yaml)',
        "spec.template.spec.containers[0].ports[0].containerPort: expected integer, "
        'got string "9090" (values: ci/prod-values.yaml)',
    ]
    assert finding.fixes == ()  # the rendered number is no edit of the template


def test_a_helper_emitting_a_bad_key_is_at_the_include_with_the_define_related(
    seeded: dict[Path, list[Finding]],
) -> None:
    deployment = (CHARTS / "seeded/templates/deployment.yaml").resolve()
    helpers = (CHARTS / "seeded/templates/_helpers.tpl").resolve()
    (finding,) = at(seeded[deployment], 16)  # `{{- include "seeded.podSettings" . | nindent 6 }}`
    assert span(finding) == (16, 6, 55)
    assert finding.message == (
        'unknown field "spec.template.spec.terminationGracePeriod" '
        '(did you mean "terminationGracePeriodSeconds"?) '
        '(written by include "seeded.podSettings") (values: values.yaml, ci/prod-values.yaml)'
    )
    assert [(r.path, r.range, r.message) for r in finding.related] == [
        (str(helpers), Range.of(9, 0, 9, 22), 'written here by define "seeded.podSettings"')
    ]
    assert finding.fixes == ()
    assert helpers not in seeded  # nothing is reported in the helpers file itself


def test_to_yaml_of_values_is_at_the_action_naming_the_values_path(
    seeded: dict[Path, list[Finding]],
) -> None:
    deployment = (CHARTS / "seeded/templates/deployment.yaml").resolve()
    values = (CHARTS / "seeded/values.yaml").resolve()
    (finding,) = at(
        seeded[deployment], 30
    )  # `{{- toYaml . | nindent 12 }}` in `with .Values.resources`
    assert span(finding) == (30, 12, 40)
    assert finding.message == (
        'unknown field "spec.template.spec.containers[0].resources.limit" '
        '(did you mean "limits"?) (written by toYaml .Values.resources: '
        ".Values.resources.limit in values.yaml) (values: values.yaml, ci/prod-values.yaml)"
    )
    assert [(r.path, r.range) for r in finding.related] == [(str(values), Range.of(4, 2, 4, 7))]


def test_a_key_in_a_range_body_is_one_finding_for_every_item(
    seeded: dict[Path, list[Finding]],
) -> None:
    deployment = (CHARTS / "seeded/templates/deployment.yaml").resolve()
    (finding,) = at(seeded[deployment], 26)  # `valu: {{ .value | quote }}` inside `range`
    assert span(finding) == (26, 14, 18)
    assert finding.message.split("\n") == [
        f'unknown field "spec.template.spec.containers[0].env[{i}].valu" (did you mean "value"?) '
        "(values: values.yaml, ci/prod-values.yaml)"
        for i in (0, 1)
    ]


def test_a_service_selecting_no_pod_template_is_at_its_selector(
    seeded: dict[Path, list[Finding]],
) -> None:
    service = (CHARTS / "seeded/templates/service.yaml").resolve()
    (finding,) = seeded[service]
    assert span(finding) == (7, 2, 10)  # `  selector:`
    assert finding.code == "k8s-service-no-match"
    assert finding.severity == "information"
    assert finding.message == (
        'Service "rel" selects app.kubernetes.io/name=api, which matches no workload in the '
        "chart's render (values: values.yaml, ci/prod-values.yaml)"
    )


def test_the_seeded_chart_has_no_other_finding(seeded: dict[Path, list[Finding]]) -> None:
    lines = {path.name: sorted(f.range.start.line for f in found) for path, found in seeded.items()}
    assert lines == {"deployment.yaml": [7, 16, 22, 26, 30], "service.yaml": [7]}


def test_a_helm_create_chart_renders_with_no_finding_at_all() -> None:
    chart = CHARTS / "web"
    renders = [render(chart), render(chart, "ci/all-values.yaml")]
    kinds = {
        document["kind"]
        for key, text in renders[1].manifests.items()
        if key.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    }
    assert {
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "ServiceAccount",
    } <= kinds
    assert check_rendered(chart, renders, K8S) == {}
    assert check_rendered(chart, renders, "1.25") == {}


def test_a_finding_of_one_render_says_which(tmp_path: Path) -> None:
    chart = write_chart(
        tmp_path / "c",
        {
            "values.yaml": "strict: false\n",
            "ci/strict-values.yaml": "strict: true\n",
            "templates/cm.yaml": """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: cm
                  {{- if .Values.strict }}
                  labelz:
                    a: b
                  {{- end }}
                data: {}
            """,
        },
    )
    found = check_rendered(chart, [render(chart), render(chart, "ci/strict-values.yaml")], K8S)
    (finding,) = found[(chart / "templates/cm.yaml").resolve()]
    assert span(finding) == (5, 2, 8)
    assert finding.message.endswith("(values: ci/strict-values.yaml)")


def test_a_key_no_line_wrote_is_at_the_first_line_with_the_rendered_text(tmp_path: Path) -> None:
    chart = write_chart(
        tmp_path / "c",
        {
            "values.yaml": "field: replicaz\n",
            "templates/_notes.tpl": "{{/* a partial: never checked */}}\n",
            "templates/deploy.yaml": """
                {{/* A key chosen by the values. */}}
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: d
                spec:
                  {{ .Values.field }}: 3
                  selector:
                    matchLabels: {app: d}
                  template:
                    metadata:
                      labels: {app: d}
                    spec:
                      containers: [{name: c, image: nginx}]
            """,
        },
    )
    found = check_rendered(chart, [render(chart)], K8S)
    (finding,) = found[(chart / "templates/deploy.yaml").resolve()]
    assert span(finding) == (1, 0, 19)  # `apiVersion: apps/v1`, past the comment
    assert finding.message == (
        'unknown field "spec.replicaz" (did you mean "replicas"?) (rendered: replicaz: 3) '
        "(values: values.yaml)"
    )


def test_documents_of_a_multi_document_template_are_told_apart(tmp_path: Path) -> None:
    chart = write_chart(
        tmp_path / "c",
        {
            "values.yaml": "names: [a, b]\n",
            "templates/many.yaml": """
                {{- range .Values.names }}
                ---
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: cm-{{ . }}
                data:
                  x: "1"
                {{- end }}
                ---
                apiVersion: v1
                kind: Secret
                metadata:
                  name: s
                data:
                  x: MQ==
                strinData:
                  y: "2"
            """,
        },
    )
    found = check_rendered(chart, [render(chart)], K8S)
    (finding,) = found[(chart / "templates/many.yaml").resolve()]
    assert span(finding) == (16, 0, 9)  # `strinData:` in the Secret, not in the ConfigMaps
    assert finding.message.startswith('unknown field "strinData" (did you mean "stringData"?)')


def test_duplicates_across_templates_point_at_each_other(tmp_path: Path) -> None:
    text = """
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: {{ .Release.Name }}
    """
    chart = write_chart(tmp_path / "c", {"templates/a.yaml": text, "templates/b.yaml": text})
    found = check_rendered(chart, [render(chart)], K8S)
    a, b = (chart / "templates/a.yaml").resolve(), (chart / "templates/b.yaml").resolve()
    for path, other in ((a, b), (b, a)):
        (finding,) = found[path]
        assert finding.code == "k8s-duplicate-resource"
        assert span(finding) == (3, 8, 27)  # the name's value: `{{ .Release.Name }}`
        assert finding.message == (
            'ServiceAccount "rel" is defined 2 times in the chart\'s render (values: values.yaml)'
        )
        assert [(r.path, r.range.start.line) for r in finding.related] == [(str(other), 3)]


def test_helm_template_output_is_split_by_its_source_comments(tmp_path: Path) -> None:
    chart = write_chart(
        tmp_path / "c",
        {
            "templates/a.yaml": """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: a
                data: {}
            """,
            "templates/b.yaml": """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: b
                  labelz: {}
            """,
        },
    )
    stream = "".join(
        f"---\n# Source: t/{key}\n{text}" for key, text in sorted(render(chart).manifests.items())
    )
    rendered = Rendered(RenderRequest(chart), {"templates/a.yaml": stream})
    found = check_rendered(chart, [rendered], K8S)
    (finding,) = found[(chart / "templates/b.yaml").resolve()]
    assert span(finding) == (4, 2, 8)
    assert (chart / "templates/a.yaml").resolve() not in found


def test_an_edit_of_one_template_checks_only_that_template_again(tmp_path: Path) -> None:
    files = {
        f"templates/cm{i}.yaml": f"""
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: cm{i}
            data:
              count: "{{{{ .Values.count }}}}"
        """
        for i in range(5)
    }
    chart = write_chart(tmp_path / "c", {"values.yaml": "count: 1\n", **files})
    checker = RenderedChecker()
    assert checker.check(chart, [render(chart)], K8S) == {}
    assert checker.misses == 5
    assert checker.check(chart, [render(chart)], K8S) == {}
    assert checker.misses == 5
    edited = chart / "templates/cm3.yaml"
    edited.write_text(edited.read_text().replace("\ndata:", "\ndat:"))
    found = checker.check(chart, [render(chart)], K8S)
    assert checker.misses == 6
    assert [span(f) for f in found[edited.resolve()]] == [(4, 0, 3)]


def test_placement_reads_the_editor_buffer_not_the_file_on_disk(tmp_path: Path) -> None:
    chart = write_chart(
        tmp_path / "c",
        {
            "templates/cm.yaml": """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: cm
                dat: {}
            """
        },
    )
    path = (chart / "templates/cm.yaml").resolve()
    buffer = "# edited, not saved\n" + path.read_text()
    rendered = Rendered(RenderRequest(chart), {"templates/cm.yaml": buffer.split("\n", 1)[1]})

    def read(p: Path) -> str | None:
        return buffer if p == path else None

    (finding,) = check_rendered(chart, [rendered], K8S, read=read)[path]
    assert span(finding) == (5, 0, 3)


def test_actions_writing_under_the_same_key_are_told_apart_by_their_source(
    tmp_path: Path,
) -> None:
    chart = write_chart(
        tmp_path / "c",
        {
            "values.yaml": """
                pullPolicy: IfNotPresent
                podLabels:
                  tier: "has spaces"
                pod:
                  security:
                    runAsUser: 1000
                    runAsGroupp: 3000
                extraContainers:
                  - name: sidecar
                    image: busybox
                    imagePullPolicy: Sometimes
            """,
            "templates/_helpers.tpl": """
                {{- define "c.labels" -}}
                app: c
                {{- end }}
                {{- define "c.configmap" -}}
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: {{ .Release.Name }}-cm
                datta:
                  a: b
                {{- end }}
            """,
            "templates/cm.yaml": '{{ include "c.configmap" . }}\n',
            "templates/deploy.yaml": """
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: {{ .Release.Name }}
                spec:
                  selector:
                    matchLabels:
                      {{- include "c.labels" . | nindent 6 }}
                  template:
                    metadata:
                      labels:
                        {{- include "c.labels" . | nindent 8 }}
                        {{- with .Values.podLabels }}
                        {{- toYaml . | nindent 8 }}
                        {{- end }}
                    spec:
                      {{- with .Values.pod }}
                      securityContext:
                        {{- toYaml .security | nindent 8 }}
                      {{- end }}
                      containers:
                        - name: main
                          image: nginx
                          imagePullPolicy: {{ .Values.pullPolicy }}
                        {{- with .Values.extraContainers }}
                        {{- toYaml . | nindent 8 }}
                        {{- end }}
            """,
        },
    )
    found = check_rendered(chart, [render(chart)], K8S)
    values = str((chart / "values.yaml").resolve())

    (whole,) = found[(chart / "templates/cm.yaml").resolve()]  # a document from one include
    assert span(whole) == (0, 0, 29)
    assert '(written by include "c.configmap")' in whole.message
    assert [(r.path, r.range.start.line) for r in whole.related] == [
        (str((chart / "templates/_helpers.tpl").resolve()), 8)
    ]

    deploy = found[(chart / "templates/deploy.yaml").resolve()]
    by_line = {f.range.start.line: f for f in deploy}
    assert sorted(by_line) == [13, 18, 25]
    label = by_line[13]  # the label came from toYaml of .Values.podLabels, not the include
    assert "(written by toYaml .Values.podLabels: .Values.podLabels.tier in values.yaml)" in (
        label.message
    )
    assert [(r.path, r.range.start.line) for r in label.related] == [(values, 2)]
    group = by_line[18]  # `with .Values.pod` + `toYaml .security`
    assert ".Values.pod.security.runAsGroupp in values.yaml" in group.message
    sidecar = by_line[25]  # items after the literal container: the toYaml line, not line 23
    assert span(sidecar) == (25, 8, 35)
    assert sidecar.message.startswith("spec.template.spec.containers[1].imagePullPolicy: ")
    assert ".Values.extraContainers[0].imagePullPolicy in values.yaml" in sidecar.message
    assert [(r.path, r.range.start.line) for r in sidecar.related] == [(values, 10)]


def test_a_subchart_template_reads_the_parents_section_then_its_own_values(
    tmp_path: Path,
) -> None:
    chart = write_chart(
        tmp_path / "app",
        {
            "values.yaml": """
                db:
                  resources:
                    limit:
                      cpu: 100m
            """,
            "charts/db/Chart.yaml": "apiVersion: v2\nname: db\nversion: 0.1.0\n",
            "charts/db/values.yaml": """
                resources: {}
                securityContext:
                  runAsUserr: 1000
            """,
            "charts/db/templates/sts.yaml": """
                apiVersion: apps/v1
                kind: StatefulSet
                metadata:
                  name: {{ .Release.Name }}-db
                spec:
                  serviceName: db
                  selector:
                    matchLabels: {app: db}
                  template:
                    metadata:
                      labels: {app: db}
                    spec:
                      securityContext:
                        {{- toYaml .Values.securityContext | nindent 8 }}
                      containers:
                        - name: db
                          image: postgres:16
                          resources:
                            {{- toYaml .Values.resources | nindent 12 }}
            """,
        },
    )
    found = check_rendered(chart, [render(chart)], K8S)
    template = (chart / "charts/db/templates/sts.yaml").resolve()
    by_line = {f.range.start.line: f for f in found[template]}
    assert sorted(by_line) == [13, 18]
    own = by_line[13]
    assert ".Values.securityContext.runAsUserr in charts/db/values.yaml" in own.message
    assert [(r.path, r.range.start.line) for r in own.related] == [
        (str((chart / "charts/db/values.yaml").resolve()), 2)
    ]
    parent = by_line[18]
    assert ".Values.resources.limit in values.yaml" in parent.message
    assert [(r.path, r.range.start.line) for r in parent.related] == [
        (str((chart / "values.yaml").resolve()), 2)
    ]


def test_a_label_both_literal_and_from_a_helper_is_a_duplicate_at_the_include(
    tmp_path: Path,
) -> None:
    chart = write_chart(
        tmp_path / "c",
        {
            "templates/_helpers.tpl": """
                {{- define "c.labels" -}}
                app: c
                {{- end }}
            """,
            "templates/cm.yaml": """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: cm
                  labels:
                    app: c
                    {{- include "c.labels" . | nindent 4 }}
            """,
        },
    )
    found = check_rendered(chart, [render(chart)], K8S)
    (finding,) = found[(chart / "templates/cm.yaml").resolve()]
    assert finding.code == "yaml-duplicate-key"
    assert span(finding) == (6, 4, 43)
    assert [(r.path, r.range.start.line, r.message) for r in finding.related] == [
        (None, 5, "first occurrence"),
        (str((chart / "templates/_helpers.tpl").resolve()), 1, 'written here by define "c.labels"'),
    ]


def test_rendered_text_that_does_not_parse_is_at_the_line_that_wrote_it(tmp_path: Path) -> None:
    chart = write_chart(
        tmp_path / "c",
        {
            "values.yaml": 'setting: "b: c"\n',
            "templates/cm.yaml": """
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: cm
                data:
                  a: {{ .Values.setting }}
            """,
        },
    )
    found = check_rendered(chart, [render(chart)], K8S)
    (finding,) = found[(chart / "templates/cm.yaml").resolve()]
    assert finding.code == "yaml-syntax"
    assert span(finding) == (5, 5, 26)  # `{{ .Values.setting }}`: it rendered `a: b: c`


def test_many_renders_are_counted_not_listed(tmp_path: Path) -> None:
    files = {f"ci/v{i}-values.yaml": f"n{i}: {i}\n" for i in range(5)}
    template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndat: {}\n"
    chart = write_chart(tmp_path / "c", {**files, "templates/cm.yaml": template})
    renders = [render(chart), *(render(chart, name) for name in sorted(files))]
    (finding,) = check_rendered(chart, renders, K8S)[(chart / "templates/cm.yaml").resolve()]
    assert finding.message.endswith("(values: all 6 renders)")
    (finding,) = check_rendered(chart, renders[:4], K8S)[(chart / "templates/cm.yaml").resolve()]
    assert finding.message.endswith("(values: all 4 renders)")
