"""Kubernetes manifests against the packaged schemas: exact ranges, no false alarms."""

from __future__ import annotations

from tests.checks.conftest import Check, brief

VALID = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app.kubernetes.io/name: web, tier: "1"}
  annotations:
    example.com/owner: "team a"
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          imagePullPolicy: IfNotPresent
          ports: [{containerPort: 80, name: http, protocol: TCP}]
          env:
            - {name: MODE, value: "production"}
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {cpu: 1, memory: 1.5Gi, ephemeral-storage: 1e9}
          readinessProbe:
            httpGet: {path: /healthz, port: http, scheme: HTTP}
      tolerations: [{key: k, operator: Exists, effect: NoSchedule}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: ClusterIP
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cleanup, namespace: shop}
spec:
  schedule: "*/5 * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox, args: [sh, -c, "echo hi"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:custom:reader"}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings, namespace: shop}
    data: {a: "1"}
"""


def test_valid_manifests_give_no_finding(check: Check) -> None:
    assert check("app.yaml", VALID) == []


def test_type_required_unknown_enum_quantity_and_name(check: Check) -> None:
    findings = check(
        "bad.yaml",
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: Web_App
          labels: {ok: "a b"}
        spec:
          replica: 2
          replicas: two
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
                - name: web
                  imagePullPolicy: Sometimes
                  resources: {limits: {memory: 1GB}}
                  ports: [{containerPort: 99999999999}]
                - image: nginx
        """,
    )
    assert brief(findings) == [
        ("k8s-schema", 3, 8, 3, 15, "error"),  # metadata.name
        ("k8s-schema", 4, 15, 4, 20, "error"),  # label value "a b"
        ("k8s-schema", 6, 2, 6, 9, "error"),  # unknown field replica (strict from 1.27)
        ("k8s-schema", 7, 12, 7, 15, "error"),  # replicas: two
        ("k8s-schema", 14, 27, 14, 36, "error"),  # imagePullPolicy
        ("k8s-schema", 15, 39, 15, 42, "error"),  # 1GB
        ("k8s-schema", 16, 34, 16, 45, "error"),  # int32 overflow
        ("k8s-schema", 17, 10, 17, 15, "error"),  # missing name (first key of the item)
    ]
    messages = [f.message for f in findings]
    assert 'unknown field "spec.replica" (did you mean "replicas"?)' in messages
    assert 'spec.replicas: expected integer, got string "two"' in messages
    assert 'missing required field "name" in spec.template.spec.containers[1]' in messages
    assert any('Unsupported value: "Sometimes"' in m for m in messages)


def test_outdated_api_version_suggests_the_current_one(check: Check) -> None:
    findings = check(
        "old.yaml",
        "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: a}\n",
    )
    assert brief(findings) == [("k8s-unknown-kind", 0, 12, 0, 30, "error")]
    assert findings[0].message.endswith("use apiVersion: apps/v1")


def test_misspelled_kind(check: Check) -> None:
    findings = check("svc.yaml", "apiVersion: v1\nkind: service\nmetadata: {name: a}\n")
    assert brief(findings) == [("k8s-unknown-kind", 1, 6, 1, 13, "error")]
    assert 'did you mean "Service"' in findings[0].message


def test_target_version_matters(check: Check) -> None:
    text = """\
    apiVersion: autoscaling/v2beta2
    kind: HorizontalPodAutoscaler
    metadata: {name: a}
    spec:
      scaleTargetRef: {kind: Deployment, name: a}
      maxReplicas: 2
    """
    assert check("hpa.yaml", text, "1.25") == []
    findings = check("hpa.yaml", text, "1.37")
    assert [f.code for f in findings] == ["k8s-unknown-kind"]
    assert "use apiVersion: autoscaling/v2" in findings[0].message


def test_non_kubernetes_yaml_is_left_alone(check: Check) -> None:
    assert check("compose.yaml", "services:\n  web: {image: nginx}\n") == []
    assert check("kubeconfig.yaml", "apiVersion: v1\nkind: Config\nclusters: []\n") == []
    assert (
        check(
            "kustomize.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        )
        == []
    )


def test_selector_must_match_template_labels(check: Check) -> None:
    findings = check(
        "deploy.yaml",
        """\
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: db}
        spec:
          serviceName: db
          selector:
            matchLabels: {app: db}
          template:
            metadata:
              labels: {app: database}
            spec:
              containers: [{name: db, image: postgres}]
        """,
    )
    assert brief(findings) == [("k8s-selector-mismatch", 6, 18, 6, 21, "error")]
    assert findings[0].related[0].range.start.line == 9


def test_duplicate_keys_in_manifests_are_errors(check: Check) -> None:
    findings = check(
        "dup.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nkind: Secret\n"
    )
    dup = [f for f in findings if f.code == "yaml-duplicate-key"]
    assert brief(dup) == [("yaml-duplicate-key", 3, 0, 3, 4, "error")]
    assert dup[0].related[0].range.start.line == 1


def test_helm_templates_never_get_yaml_or_schema_errors(check: Check) -> None:
    text = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{ include "x.fullname" . }}
    {{- if .Values.extra }}
    spec: [broken
    {{- end }}
    """
    assert check("chart/templates/deploy.yaml", text) == []
    assert check("loose-template.yaml", text) == []


def test_api_groups_under_a_configuration_group_name_are_checked(check: Check) -> None:
    """FlowSchema lives in flowcontrol.apiserver.k8s.io: an API, not apiserver's config."""
    flow = """\
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: a}
spec:
  priorityLevelConfiguration: {name: global-default}
  matchingPrecedence: "high"
"""
    findings = check("flow.yaml", flow)
    assert [(f.code, f.range.start.line) for f in findings] == [("k8s-schema", 5)]
    admission = "apiVersion: apiserver.k8s.io/v1\nkind: AdmissionConfiguration\nplugins: []\n"
    assert check("admission.yaml", admission) == []


def test_unknown_fields_are_errors_where_the_api_server_refuses_them(check: Check) -> None:
    """Strict field validation is kubectl's default from Kubernetes 1.27: an unknown field in a
    closed schema is refused then, and only warned about before."""
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndatta: {k: v}\n"
    assert brief(check("cm.yaml", text, "1.27")) == [("k8s-schema", 3, 0, 3, 5, "error")]
    assert brief(check("cm.yaml", text, "1.26")) == [("k8s-schema", 3, 0, 3, 5, "warning")]


# kube-prometheus' prometheus-roleBindingSpecificNamespaces.yaml: a typed list, `kind` last.
ROLE_BINDING_LIST = """\
apiVersion: rbac.authorization.k8s.io/v1
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata:
    name: prometheus-k8s
    namespace: default
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: prometheus-k8s}
  subjects:
  - kind: ServiceAccount
    name: prometheus-k8s
    namespace: monitoring
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata:
    name: prometheus-k8s
    namespace: kube-system
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: prometheus-k8s}
  subjects:
  - kind: ServiceAccount
    name: prometheus-k8s
    namespace: monitoring
kind: RoleBindingList
"""


def test_typed_and_plain_lists_are_no_objects_without_a_name(check: Check) -> None:
    assert check("rb.yaml", ROLE_BINDING_LIST) == []
    # `kubectl get cm -o yaml`: kind List, ListMeta metadata without a name.
    listed = """\
        apiVersion: v1
        kind: List
        metadata:
          resourceVersion: ""
        items:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {name: settings, namespace: shop}
          data: {a: "1"}
        """
    assert check("cm.yaml", listed) == []


def test_each_list_item_is_checked_at_its_own_lines(check: Check) -> None:
    findings = check(
        "cms.yaml",
        """\
        apiVersion: v1
        kind: ConfigMapList
        metadata: {resourceVersion: "1", name: nope}
        items:
        - metadata: {name: inherits-kind}
          data: {retries: 3}
        - apiVersion: v1
          kind: ConfigMap
          metadata: {namespace: shop}
        - apiVersion: v1
          kind: Service
          metadata: {name: web}
          spec: {type: Bogus, ports: [{port: 80}]}
        """,
    )
    assert brief(findings) == [
        ("k8s-schema", 2, 33, 2, 37, "error"),  # ListMeta has no name
        ("k8s-schema", 5, 18, 5, 19, "error"),  # data.retries: an inherited ConfigMap
        ("k8s-schema", 8, 2, 8, 10, "error"),  # the second item has no name
        ("k8s-schema", 12, 15, 12, 20, "error"),  # the Service's type
    ]
    assert findings[0].message == 'unknown field "metadata.name"'
    assert findings[1].message == "data.retries: expected string, got integer 3"
    assert findings[2].message == 'missing required field "name" in metadata'


def test_a_plain_list_item_needs_its_own_kind(check: Check) -> None:
    findings = check(
        "list.yaml",
        """\
        apiVersion: v1
        kind: List
        items:
        - metadata: {name: orphan}
        """,
    )
    assert brief(findings) == [("k8s-schema", 3, 2, 3, 10, "error")]
    assert findings[0].message == 'missing required field "kind"'
