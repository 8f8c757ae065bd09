"""A stack shaped like ktl's showcase (`testdata/stack/showcase/mega`), written for the tests:
real charts whose renders create and use what ktl infers needs from, and workloads that
declare no needs.

- ``namespace`` creates the Namespace ``shop`` every other release lives in;
- ``crds`` ships the CRD ``widgets.example.com`` (kind ``Widget``) in its ``crds/`` directory;
- ``rbac`` creates the ServiceAccount ``api-sa`` and binds a Role to it;
- ``config`` creates the ConfigMap ``app-config`` and the Secret ``app-secret``;
- ``db`` creates the claim ``data``, and its StatefulSet reads ``app-secret``;
- ``api`` runs as ``api-sa``, mounts ``data``, reads ``app-config`` and creates a Widget; its
  hook Job (left out, as Helm leaves hooks out of the release manifest) names ``worker``;
- ``worker`` and ``web`` (the same chart) name what they wait for with ``ktl.io/depends-on``
  and their parallelism group with ``ktl.io/parallelismGroup`` (the stack file sets web's);
  ``config`` gives its wave with ``ktl.io/wave``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

CHARTS: dict[str, dict[str, str]] = {
    "namespace": {
        "values.yaml": "name: shop\n",
        "templates/namespace.yaml": """\
            apiVersion: v1
            kind: Namespace
            metadata:
              name: {{ .Values.name }}
            """,
    },
    "crds": {
        "values.yaml": "{}\n",
        "crds/widgets.yaml": """\
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata:
              name: widgets.example.com
            spec:
              group: example.com
              names: {kind: Widget, plural: widgets, singular: widget}
              scope: Namespaced
              versions:
                - name: v1
                  served: true
                  storage: true
                  schema:
                    openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
            """,
    },
    "rbac": {
        "values.yaml": "serviceAccount: default-sa\n",
        "templates/rbac.yaml": """\
            apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: {{ .Values.serviceAccount }}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata:
              name: {{ .Values.serviceAccount }}-reader
            rules:
              - {apiGroups: [""], resources: [configmaps], verbs: [get]}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata:
              name: {{ .Values.serviceAccount }}-reader
            subjects:
              - kind: ServiceAccount
                name: {{ .Values.serviceAccount }}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: {{ .Values.serviceAccount }}-reader}
            """,
    },
    "config": {
        "values.yaml": "configMap: app-config\nsecret: app-secret\n",
        "templates/config.yaml": """\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ .Values.configMap }}
              annotations: {ktl.io/wave: "2"}
            data: {mode: demo}
            ---
            apiVersion: v1
            kind: Secret
            metadata:
              name: {{ .Values.secret }}
            stringData: {password: demo}
            """,
    },
    "db": {
        "values.yaml": "claim: data\nsecret: app-secret\n",
        "templates/db.yaml": """\
            apiVersion: v1
            kind: PersistentVolumeClaim
            metadata:
              name: {{ .Values.claim }}
            spec:
              accessModes: [ReadWriteMany]
              resources: {requests: {storage: 1Gi}}
            ---
            apiVersion: apps/v1
            kind: StatefulSet
            metadata:
              name: {{ .Release.Name }}
            spec:
              serviceName: {{ .Release.Name }}
              selector: {matchLabels: {app: db}}
              template:
                metadata: {labels: {app: db}}
                spec:
                  containers:
                    - name: db
                      image: postgres:16
                      env:
                        - name: POSTGRES_PASSWORD
                          valueFrom: {secretKeyRef: {name: {{ .Values.secret }}, key: password}}
                      volumeMounts: [{name: data, mountPath: /var/lib/postgresql}]
                  volumes:
                    - name: data
                      persistentVolumeClaim: {claimName: {{ .Values.claim }}}
            """,
    },
    "api": {
        "values.yaml": "serviceAccount: default\nclaim: data\nconfigMap: app-config\n",
        "templates/deployment.yaml": """\
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: {{ .Release.Name }}
            spec:
              selector: {matchLabels: {app: api}}
              template:
                metadata: {labels: {app: api}}
                spec:
                  serviceAccountName: {{ .Values.serviceAccount }}
                  containers:
                    - name: api
                      image: example/api:1
                      envFrom: [{configMapRef: {name: {{ .Values.configMap }}}}]
                      volumeMounts: [{name: uploads, mountPath: /uploads}]
                  volumes:
                    - name: uploads
                      persistentVolumeClaim: {claimName: {{ .Values.claim }}}
            ---
            apiVersion: example.com/v1
            kind: Widget
            metadata:
              name: {{ .Release.Name }}-widget
            spec: {owner: {{ .Release.Name }}}
            """,
        "templates/migrate-hook.yaml": """\
            apiVersion: batch/v1
            kind: Job
            metadata:
              name: {{ .Release.Name }}-migrate
              annotations:
                helm.sh/hook: pre-install
                ktl.io/depends-on: worker
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers: [{name: migrate, image: example/api:1}]
            """,
    },
    "app": {
        "values.yaml": 'dependsOn: ""\n',
        "templates/deployment.yaml": """\
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: {{ .Release.Name }}
              annotations:
                ktl.io/depends-on: {{ .Values.dependsOn | quote }}
                ktl.io/parallelismGroup: apps
            spec:
              selector: {matchLabels: {app: {{ .Release.Name }}}}
              template:
                metadata: {labels: {app: {{ .Release.Name }}}}
                spec:
                  containers: [{name: app, image: busybox:1}]
            """,
    },
}

#: Release name -> (chart, set); every release in namespace ``shop`` of cluster ``c1``.
RELEASES: list[tuple[str, str, dict[str, str]]] = [
    ("namespace", "namespace", {}),
    ("crds", "crds", {}),
    ("rbac", "rbac", {"serviceAccount": "api-sa"}),
    ("config", "config", {}),
    ("db", "db", {}),
    ("api", "api", {}),
    ("worker", "app", {"dependsOn": "api"}),
    ("web", "app", {"dependsOn": "api\\,worker"}),
]

#: The order ktl runs the stack in: each wave needs only earlier ones (in declaration order).
WAVES = [["namespace", "crds"], ["rbac", "config"], ["db"], ["api"], ["worker"], ["web"]]


def write_charts(root: Path) -> Path:
    """Every chart under ``root/charts``; returns that directory."""
    charts = root / "charts"
    for chart, files in CHARTS.items():
        directory = charts / chart
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "Chart.yaml").write_text(f"apiVersion: v2\nname: {chart}\nversion: 0.1.0\n")
        for name, text in files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
    return charts


def write_stack(root: Path, cli: dict[str, object] | None = None) -> Path:
    """The stack (charts included) under ``root``; ``api`` takes its ServiceAccount from a
    values file. Returns the stack.yaml."""
    write_charts(root)
    (root / "values").mkdir(exist_ok=True)
    (root / "values" / "api.yaml").write_text("serviceAccount: api-sa\n")
    releases: list[dict[str, object]] = []
    for name, chart, sets in RELEASES:
        release: dict[str, object] = {"name": name, "chart": f"./charts/{chart}"}
        if sets:
            release["set"] = sets
        if name == "api":
            release["values"] = ["./values/api.yaml"]
        if name == "web":
            release["parallelismGroup"] = "front"
        releases.append(release)
    data: dict[str, object] = {
        "apiVersion": "ktl.dev/v1",
        "kind": "Stack",
        "name": "shop",
        "defaults": {"cluster": {"name": "c1"}, "namespace": "shop"},
        "cli": {"inferConfigRefs": True, **(cli or {})},
        "releases": releases,
    }
    stack = root / "stack.yaml"
    stack.write_text(yaml.safe_dump(data, sort_keys=False))
    return stack
