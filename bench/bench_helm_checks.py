"""Render + check of a 40-template chart after an edit of one template, as the editor does it.

A chart is generated (40 templates in the shapes `helm create` writes: Deployments, Services,
ConfigMaps, Ingresses, HPAs and ServiceAccounts with `include`, `toYaml` and `with` blocks,
one `_helpers.tpl`), rendered with the helm extra and checked once (cold). Then, round after
round, one template is edited (a label value changes), the chart is rendered again and
`check_rendered` runs. Printed: the median and p90 of the render, of the check and of both,
against two baselines measured in the same run on the same rendered text: that text checked
as a plain manifest (`parse_text` + `check_manifest` of every document, cold: what a manifest
file of that size costs) and the edited template's documents only (what the workspace re-checks
after a one-document edit: the real limit). The issue's target is render + check <= 100 ms.

    .venv/bin/python bench/bench_helm_checks.py [--templates 40] [--rounds 40] [--chart DIR]

`--chart` takes a real chart instead (copied; each edit appends a comment to one template).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import helm_python

from ktl_lsp.checks.crds import CrdRegistry
from ktl_lsp.checks.k8s_manifest import check_manifest
from ktl_lsp.checks.k8s_schemas import schemas_for
from ktl_lsp.documents.yaml_parse import parse_text
from ktl_lsp.helm.model import Rendered, RenderRequest
from ktl_lsp.helm.rendered_checks import RenderedChecker

K8S = "1.31"

HELPERS = """{{- define "bench.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bench.labels" -}}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{ include "bench.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "bench.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
"""

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "bench.fullname" . }}-NAME
  labels:
    {{- include "bench.labels" . | nindent 4 }}
    edit: "EDIT"
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "bench.selectorLabels" . | nindent 6 }}
      component: GROUP
  template:
    metadata:
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      labels:
        {{- include "bench.labels" . | nindent 8 }}
        component: GROUP
    spec:
      {{- with .Values.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: NAME
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          {{- with .Values.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ .Values.service.port }}
              protocol: TCP
          env:
            {{- range $key, $value := .Values.env }}
            - name: {{ $key }}
              value: {{ $value | quote }}
            {{- end }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
          readinessProbe:
            httpGet:
              path: /ready
              port: http
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          volumeMounts:
            - name: config
              mountPath: /etc/NAME
      volumes:
        - name: config
          configMap:
            name: {{ include "bench.fullname" . }}-NAME
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
"""

SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: {{ include "bench.fullname" . }}-NAME
  labels:
    {{- include "bench.labels" . | nindent 4 }}
    edit: "EDIT"
spec:
  type: {{ .Values.service.type }}
  ports:
    - port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
      name: http
  selector:
    {{- include "bench.selectorLabels" . | nindent 4 }}
    component: GROUP
"""

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "bench.fullname" . }}-NAME
  labels:
    {{- include "bench.labels" . | nindent 4 }}
    edit: "EDIT"
data:
  app.yaml: |
    name: NAME
    level: {{ .Values.logLevel }}
  {{- range $key, $value := .Values.settings }}
  {{ $key }}: {{ $value | quote }}
  {{- end }}
"""

INGRESS = """{{- if .Values.ingress.enabled -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "bench.fullname" . }}-NAME
  labels:
    {{- include "bench.labels" . | nindent 4 }}
    edit: "EDIT"
  {{- with .Values.ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  ingressClassName: {{ .Values.ingress.className }}
  rules:
    {{- range .Values.ingress.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range .paths }}
          - path: {{ .path }}
            pathType: {{ .pathType }}
            backend:
              service:
                name: {{ include "bench.fullname" $ }}-NAME
                port:
                  number: {{ $.Values.service.port }}
          {{- end }}
    {{- end }}
{{- end }}
"""

HPA = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "bench.fullname" . }}-NAME
  labels:
    {{- include "bench.labels" . | nindent 4 }}
    edit: "EDIT"
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "bench.fullname" . }}-NAME
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .Values.autoscaling.targetCPUUtilizationPercentage }}
"""

SERVICE_ACCOUNT = """apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "bench.fullname" . }}-NAME
  labels:
    {{- include "bench.labels" . | nindent 4 }}
    edit: "EDIT"
automountServiceAccountToken: false
"""

KINDS = [DEPLOYMENT, SERVICE, CONFIGMAP, INGRESS, HPA, SERVICE_ACCOUNT]

VALUES = """replicaCount: 2
image:
  repository: nginx
  pullPolicy: IfNotPresent
  tag: "1.27"
service:
  type: ClusterIP
  port: 80
podAnnotations:
  prometheus.io/scrape: "true"
podSecurityContext:
  fsGroup: 2000
securityContext:
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  runAsUser: 1000
env:
  MODE: web
  LEVEL: info
  REGION: eu
resources:
  limits:
    cpu: 500m
    memory: 256Mi
  requests:
    cpu: 100m
    memory: 128Mi
tolerations:
  - key: dedicated
    operator: Equal
    value: web
    effect: NoSchedule
logLevel: info
settings:
  feature.a: "on"
  feature.b: "off"
ingress:
  enabled: true
  className: nginx
  annotations:
    cert-manager.io/cluster-issuer: letsencrypt
  hosts:
    - host: bench.example.com
      paths:
        - path: /
          pathType: Prefix
autoscaling:
  enabled: true
  minReplicas: 2
  maxReplicas: 10
  targetCPUUtilizationPercentage: 80
"""


def write_chart(root: Path, templates: int) -> list[Path]:
    """A chart of `templates` templates (the kinds in turn); returns the template paths."""
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: bench\nversion: 0.1.0\n")
    (root / "values.yaml").write_text(VALUES)
    (root / "templates" / "_helpers.tpl").write_text(HELPERS)
    paths: list[Path] = []
    for index in range(templates):
        body = KINDS[index % len(KINDS)]
        name = f"part{index:02d}"
        path = root / "templates" / f"{name}.yaml"
        group = f"group{index // len(KINDS)}"  # a Deployment and the Service selecting it
        text = body.replace("NAME", name).replace("GROUP", group).replace("EDIT", "0")
        path.write_text(text)
        paths.append(path)
    return paths


def render(chart: Path) -> Rendered:
    with helm_python.Chart.load(str(chart)) as loaded:
        out = loaded.render(None, name="bench", namespace="default")
    manifests = {key.split("/", 1)[1]: text for key, text in out.items()}
    return Rendered(RenderRequest(chart), manifests)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def plain(texts: list[str]) -> None:
    """The rendered text checked as a plain manifest: parse and check every document."""
    k8s = schemas_for(K8S)
    crds = CrdRegistry()
    for text in texts:
        for document in parse_text(text).documents:
            if document.root is not None:
                check_manifest(document.root, k8s, crds)


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"{name:<44} median {statistics.median(values):7.1f} ms   p90 {p90:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--templates", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--chart", type=Path, help="a real chart directory (copied) instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "bench"
        if args.chart is not None:
            shutil.copytree(args.chart, chart)
            paths = sorted(
                p for p in chart.glob("templates/**/*.yaml") if not p.name.startswith("_")
            )
        else:
            paths = write_chart(chart, args.templates)
        checker = RenderedChecker()
        rendered = render(chart)
        documents = sum(len(parse_text(t).documents) for t in rendered.manifests.values())
        cold = timed(lambda: checker.check(chart, [rendered], K8S))
        found = checker.check(chart, [rendered], K8S)
        renders: list[float] = []
        checks: list[float] = []
        plain_all: list[float] = []
        plain_one: list[float] = []
        for round_ in range(1, args.rounds + 1):
            path = paths[round_ % len(paths)]
            text = path.read_text()
            if args.chart is not None:  # a comment the render keeps
                edited_text = re.sub(r"\n# edit \d+\n$", "\n", text) + f"\n# edit {round_}\n"
            else:
                edited_text = re.sub(r'edit: "\d+"', f'edit: "{round_}"', text, count=1)
            assert edited_text != text
            path.write_text(edited_text)
            start = time.perf_counter()
            rendered = render(chart)
            renders.append((time.perf_counter() - start) * 1000)
            checks.append(timed(partial(checker.check, chart, [rendered], K8S)))
            plain_all.append(timed(partial(plain, list(rendered.manifests.values()))))
            key = path.relative_to(chart).as_posix()
            plain_one.append(timed(partial(plain, [rendered.manifests.get(key, "")])))
        total = [r + c for r, c in zip(renders, checks, strict=True)]
        print(
            f"chart: {len(paths)} templates, {documents} rendered documents, "
            f"{sum(len(f) for f in found.values())} findings; {args.rounds} edits"
        )
        print(f"{'cold check (first call)':<44} {cold:7.1f} ms")
        print(summary("render after an edit (helm extra)", renders))
        print(summary("check_rendered after an edit", checks))
        print(summary("render + check after an edit", total))
        print(summary("baseline: whole render as a plain manifest", plain_all))
        print(summary("baseline: edited template's documents only", plain_one))
        median = statistics.median
        print(
            f"ratio check / plain whole render: {median(checks) / median(plain_all):.2f}   "
            f"check / plain edited template: {median(checks) / median(plain_one):.2f}   "
            f"render + check: {median(total):.1f} ms (target <= 100 ms)"
        )


if __name__ == "__main__":
    main()
