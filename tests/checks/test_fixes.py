"""Quick fixes attached to findings: applying a fix's edits removes the finding and leaves
YAML that parses, and findings without an obvious fix carry none."""

from __future__ import annotations

from pathlib import Path

import yaml

from ktl_lsp.checks import Finding, check_paths
from ktl_lsp.documents.edits import Fix
from ktl_lsp.documents.positions import LineIndex, Position

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx
          ports:
            - containerPort: 80
"""

STACK = """\
apiVersion: ktl.dev/v1
kind: Stack
name: shop
defaults:
  cluster: {name: prod}
  namespace: shop
releases:
  - name: database
    chart: ./charts/db
  - name: backend
    chart: ./charts/db
    needs: [databse]
"""


def check(tmp_path: Path, name: str, text: str, version: str | None = None) -> list[Finding]:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return check_paths([path], version)[path.resolve()]


def apply(text: str, fix: Fix) -> str:
    """The text with the fix's edits applied (last first, so earlier offsets hold)."""
    lines = LineIndex(text)
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(position: Position) -> int:
        assert position.line < lines.line_count()
        return starts[position.line] + position.character

    out = text
    for edit in sorted(fix.edits, key=lambda e: e.range.start, reverse=True):
        out = out[: offset(edit.range.start)] + edit.new_text + out[offset(edit.range.end) :]
    return out


def only_fix(findings: list[Finding], code: str, needle: str) -> tuple[Finding, Fix]:
    found = [f for f in findings if f.code == code and needle in f.message]
    assert len(found) == 1, findings
    assert len(found[0].fixes) == 1
    return found[0], found[0].fixes[0]


def fixed(tmp_path: Path, name: str, text: str, code: str, needle: str, **kw: str) -> str:
    """Applies the one fix of the finding and checks the result: parses, finding gone."""
    finding, fix = only_fix(check(tmp_path, name, text, kw.get("version")), code, needle)
    result = apply(text, fix)
    list(yaml.safe_load_all(result))
    after = check(tmp_path, name, result, kw.get("version"))
    assert not [f for f in after if f.code == code and f.message == finding.message]
    return result


def test_a_misspelled_key_becomes_the_suggested_one(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace("  replicas: 2", "  replcas: 2")
    _, fix = only_fix(check(tmp_path, "d.yaml", text), "k8s-schema", "replcas")
    assert fix.title == 'Change "replcas" to "replicas"' and fix.preferred
    assert fixed(tmp_path, "d.yaml", text, "k8s-schema", "replcas") == DEPLOYMENT


def test_a_misspelled_key_in_a_ktl_file(tmp_path: Path) -> None:
    text = STACK.replace(
        "    chart: ./charts/db\n  - name: backend", "    chrt: ./charts/db\n  - name: backend"
    )
    assert fixed(tmp_path, "stack.yaml", text, "stack-schema", 'chrt"') == STACK


def test_a_quoted_number_becomes_the_integer(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace("replicas: 2", 'replicas: "2"').replace(
        "containerPort: 80", "containerPort: '080'"
    )
    findings = check(tmp_path, "d.yaml", text)
    _, replicas = only_fix(findings, "k8s-schema", "spec.replicas")
    assert replicas.title == 'Change "2" to the integer 2'
    once = fixed(tmp_path, "d.yaml", text, "k8s-schema", "spec.replicas")
    assert fixed(tmp_path, "d.yaml", once, "k8s-schema", "containerPort") == DEPLOYMENT


def test_a_string_that_is_no_number_has_no_fix(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace("replicas: 2", "replicas: two")
    found = [f for f in check(tmp_path, "d.yaml", text) if "spec.replicas" in f.message]
    assert found and not found[0].fixes


def test_a_duplicate_key_is_removed_with_its_value(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace(
        "    spec:\n", "    spec:\n      containers:\n        - name: old\n          image: x\n"
    )
    text = text.replace("  replicas: 2\n", "  replicas: 2\n  replicas: 3 # again\n")
    findings = check(tmp_path, "d.yaml", text)
    assert len([f for f in findings if f.code == "yaml-duplicate-key"]) == 2
    _, fix = only_fix(findings, "yaml-duplicate-key", '"replicas"')
    assert fix.title == 'Remove the later "replicas"' and fix.preferred
    once = fixed(tmp_path, "d.yaml", text, "yaml-duplicate-key", '"replicas"')
    # The later `containers` goes with its whole list, up to the end of the file.
    result = fixed(tmp_path, "d.yaml", once, "yaml-duplicate-key", '"containers"')
    assert result == DEPLOYMENT.replace(
        "    spec:\n      containers:\n        - name: web",
        "    spec:\n      containers:\n        - name: old",
    ).replace(
        "          image: nginx\n          ports:\n            - containerPort: 80\n",
        "          image: x\n",
    )


def test_a_duplicate_in_a_flow_mapping_has_no_fix(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace("{app: web}\n  template", "{app: web, app: api}\n  template")
    found = [f for f in check(tmp_path, "d.yaml", text) if f.code == "yaml-duplicate-key"]
    assert found and not found[0].fixes


def test_a_need_that_names_no_release_becomes_the_closest_release(tmp_path: Path) -> None:
    (tmp_path / "charts" / "db").mkdir(parents=True)
    _, fix = only_fix(check(tmp_path, "stack.yaml", STACK), "stack-missing-need", "databse")
    assert fix.title == 'Change "databse" to the release "database"'
    result = fixed(tmp_path, "stack.yaml", STACK, "stack-missing-need", "databse")
    assert result == STACK.replace("[databse]", "[database]")
    far = STACK.replace("[databse]", "[frontend]")
    found = [f for f in check(tmp_path, "stack.yaml", far) if f.code == "stack-missing-need"]
    assert found and not found[0].fixes


def test_an_api_version_no_longer_served_becomes_its_replacement(tmp_path: Path) -> None:
    pdb = "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: p\n"
    _, fix = only_fix(check(tmp_path, "p.yaml", pdb, "1.30"), "k8s-unknown-kind", "policy/v1beta1")
    assert fix.title == "Change apiVersion to policy/v1 (no field changes needed)"
    result = fixed(tmp_path, "p.yaml", pdb, "k8s-unknown-kind", "policy/v1beta1", version="1.30")
    assert result == pdb.replace("policy/v1beta1", "policy/v1")
    # Served by 1.26, gone since, with the same fields as its replacement: no warning.
    capacity = (
        "apiVersion: storage.k8s.io/v1beta1\nkind: CSIStorageCapacity\n"
        "metadata:\n  name: c\nstorageClassName: s\n"
    )
    _, fix = only_fix(check(tmp_path, "c.yaml", capacity, "1.30"), "k8s-unknown-kind", "v1beta1")
    assert fix.title == "Change apiVersion to storage.k8s.io/v1"
    hpa = "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\n"
    _, fix = only_fix(check(tmp_path, "h.yaml", hpa, "1.30"), "k8s-unknown-kind", "v2beta2")
    assert fix.title == "Change apiVersion to autoscaling/v2 (no field changes needed)"
    # A move nothing is known about, from a version too old to compare: the title warns.
    rbac = "apiVersion: rbac.authorization.k8s.io/v1beta1\nkind: Role\nmetadata:\n  name: r\n"
    _, fix = only_fix(check(tmp_path, "r.yaml", rbac, "1.30"), "k8s-unknown-kind", "v1beta1")
    assert fix.title == (
        "Change apiVersion to rbac.authorization.k8s.io/v1 "
        "(fields may need changes: rbac.authorization.k8s.io/v1beta1 is too old to compare)"
    )


INGRESS = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: web
spec:
  backend:
    serviceName: fallback
    servicePort: http
  rules:
  - host: example.com
    http:
      paths:
      - path: /
        backend:
          serviceName: web
          servicePort: 80
      - backend: {serviceName: api, servicePort: "8080"}
        pathType: Prefix
        path: /api
"""


def test_an_ingress_moves_its_backends_to_networking_v1(tmp_path: Path) -> None:
    _, fix = only_fix(check(tmp_path, "i.yaml", INGRESS), "k8s-unknown-kind", "extensions")
    assert fix.preferred and fix.title == (
        "Change apiVersion to networking.k8s.io/v1, rename spec.backend to spec.defaultBackend, "
        "move serviceName/servicePort to service: {name, port}, "
        "add pathType: ImplementationSpecific to 1 path(s)"
    )
    result = fixed(tmp_path, "i.yaml", INGRESS, "k8s-unknown-kind", "extensions")
    assert not check(tmp_path, "i.yaml", result)  # valid networking.k8s.io/v1
    assert yaml.safe_load(result)["spec"] == {
        "defaultBackend": {"service": {"name": "fallback", "port": {"name": "http"}}},
        "rules": [
            {
                "host": "example.com",
                "http": {
                    "paths": [
                        {
                            "pathType": "ImplementationSpecific",
                            "path": "/",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}},
                        },
                        {
                            "backend": {"service": {"name": "api", "port": {"number": 8080}}},
                            "pathType": "Prefix",
                            "path": "/api",
                        },
                    ]
                },
            }
        ],
    }
    beta = INGRESS.replace("extensions/v1beta1", "networking.k8s.io/v1beta1")
    assert not check(
        tmp_path, "i.yaml", fixed(tmp_path, "i.yaml", beta, "k8s-unknown-kind", "v1beta1")
    )


def test_a_workload_gets_the_selector_apps_v1_requires(tmp_path: Path) -> None:
    old = (
        DEPLOYMENT.replace("apps/v1", "apps/v1beta1")
        .replace("  selector:\n    matchLabels: {app: web}\n", "")
        .replace("labels: {app: web}", 'labels: {app: web, tier: "1"}')
    )
    _, fix = only_fix(check(tmp_path, "d.yaml", old), "k8s-unknown-kind", "apps/v1beta1")
    assert fix.preferred
    assert fix.title == (
        "Change apiVersion to apps/v1, add spec.selector.matchLabels from the template's labels"
    )
    result = fixed(tmp_path, "d.yaml", old, "k8s-unknown-kind", "apps/v1beta1")
    assert not check(tmp_path, "d.yaml", result)
    assert yaml.safe_load(result)["spec"]["selector"] == {
        "matchLabels": {"app": "web", "tier": "1"}
    }
    # A field apps/v1 dropped, and a template without labels: said in the title, not guessed.
    rollback = old.replace("  replicas: 2\n", "  replicas: 2\n  rollbackTo: {revision: 1}\n")
    rollback = rollback.replace("apps/v1beta1", "extensions/v1beta1")
    _, fix = only_fix(check(tmp_path, "d.yaml", rollback), "k8s-unknown-kind", "extensions")
    assert not fix.preferred
    assert fix.title.endswith("(by hand: remove spec.rollbackTo, which apps/v1 does not have)")
    bare = old.replace('    metadata:\n      labels: {app: web, tier: "1"}\n', "")
    _, fix = only_fix(check(tmp_path, "d.yaml", bare), "k8s-unknown-kind", "apps/v1beta1")
    assert fix.title == (
        "Change apiVersion to apps/v1 "
        "(by hand: add spec.selector (the pod template has no labels to select))"
    )


def test_moves_without_field_changes_say_so(tmp_path: Path) -> None:
    cron = (
        "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: c}\nspec:\n"
        "  schedule: '* * * * *'\n  jobTemplate: {spec: {template: {spec: "
        "{restartPolicy: Never, containers: [{name: c, image: x}]}}}}\n"
    )
    _, fix = only_fix(check(tmp_path, "c.yaml", cron), "k8s-unknown-kind", "batch/v1beta1")
    assert fix.title == "Change apiVersion to batch/v1 (no field changes needed)"
    assert not check(
        tmp_path, "c.yaml", fixed(tmp_path, "c.yaml", cron, "k8s-unknown-kind", "v1beta1")
    )
    pdb = "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: p}\nspec:\n  selector: {}\n"
    _, fix = only_fix(check(tmp_path, "p.yaml", pdb), "k8s-unknown-kind", "policy/v1beta1")
    assert fix.title == (
        "Change apiVersion to policy/v1 "
        "(its empty selector selects every pod of the namespace in policy/v1)"
    )
    hpa = (
        "apiVersion: autoscaling/v2beta1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
        "spec:\n  scaleTargetRef: {kind: Deployment, name: d}\n  maxReplicas: 3\n"
        "  metrics: [{type: Resource, resource: {name: cpu, targetAverageUtilization: 50}}]\n"
    )
    _, fix = only_fix(check(tmp_path, "h.yaml", hpa), "k8s-unknown-kind", "v2beta1")
    assert not fix.preferred and fix.title == (
        "Change apiVersion to autoscaling/v2 "
        "(by hand: write each spec.metrics[] target as target: {type, ...})"
    )


def test_a_misspelled_kind(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace("kind: Deployment", "kind: Deploymnt")
    assert fixed(tmp_path, "d.yaml", text, "k8s-unknown-kind", "Deploymnt") == DEPLOYMENT


def test_fixes_move_with_their_document_and_count_utf16(tmp_path: Path) -> None:
    first = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {x: "😀"}}\n'
    text = (
        first
        + "---\n"
        + DEPLOYMENT.replace(
            "metadata:\n  name: web", 'metadata: {name: web, annotations: {a: "😀"}, nam: x}'
        )
    )
    path = tmp_path / "two.yaml"
    path.write_text(text)
    from ktl_lsp.checks import Workspace

    workspace = Workspace()
    workspace.load(path)
    found = [f for f in workspace.findings_for(path, "utf-16") if '.nam"' in f.message]
    assert len(found) == 1
    edit = found[0].fixes[0].edits[0]
    line = text.splitlines()[edit.range.start.line]
    column = line.index("nam:")
    assert edit.range.start == Position(6, column + 1)  # one UTF-16 unit more than code points
    assert edit.new_text == "name"


def test_missing_required_fields_are_added_with_placeholders(tmp_path: Path) -> None:
    text = (
        DEPLOYMENT.replace("metadata:\n  name: web\n", "metadata:\n  labels: {app: web}\n")
        .replace("        - name: web\n          image: nginx\n", "        - image: nginx\n")
        .replace("            - containerPort: 80\n", "            - {protocol: TCP}\n")
    )
    findings = check(tmp_path, "d.yaml", text)
    _, fix = only_fix(findings, "k8s-schema", '"name" in metadata')
    assert fix.title == 'Add the required field "name"'
    once = fixed(tmp_path, "d.yaml", text, "k8s-schema", '"name" in metadata')
    assert once.startswith(
        'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  labels: {app: web}\n  name: ""\n'
    )
    twice = fixed(tmp_path, "d.yaml", once, "k8s-schema", '"name" in spec.template')
    assert (
        '        - image: nginx\n          ports:\n            - {protocol: TCP}\n          name: ""\n'
        in twice
    )
    # A flow mapping gets the key before its closing brace, with the schema type's placeholder.
    port = fixed(tmp_path, "d.yaml", twice, "k8s-schema", '"containerPort"')
    assert "            - {protocol: TCP, containerPort: 0}\n" in port
