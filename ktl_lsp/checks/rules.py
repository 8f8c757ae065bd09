"""Stable rule ids (the diagnostic `code`) and what each one means: used by docs and SARIF."""

from __future__ import annotations

RULES: dict[str, str] = {
    "yaml-syntax": "The text is not valid YAML.",
    "yaml-duplicate-key": "A mapping repeats a key; the first occurrence is related information.",
    "yaml-too-complex": "Nesting or alias expansion beyond safe bounds; the document is skipped.",
    "file-too-large": "The file exceeds the size limit and is not checked.",
    "file-binary": "The file holds binary content and is not checked.",
    "file-encoding": "The file is not valid UTF-8 and is not checked.",
    "file-unreadable": "The file could not be read.",
    "k8s-unknown-kind": "apiVersion/kind unknown to the target Kubernetes version (or no CRD).",
    "k8s-schema": "A Kubernetes object breaks its schema: types, required and unknown fields, "
    "enum values, quantities, names and labels.",
    "k8s-selector-mismatch": "A workload's selector does not match its pod template labels.",
    "k8s-service-no-match": "A Service selector matches no workload in the workspace.",
    "k8s-duplicate-resource": "The same kind/namespace/name is defined more than once where the "
    "copies are applied together (one file, directory or kustomization); a hint elsewhere.",
    "helm-values-schema": "A Helm values file breaks the chart's values.schema.json.",
    "helm-values-ref": "A Helm template reads a .Values path no values file of the chart "
    "defines and does not guard it (warning), or a values.yaml key no template reads (hint).",
    "helm-values-secret": "A secret:// reference in Helm values that ktl cannot resolve "
    "(malformed, unknown provider, or a file-provider key that is missing or not a string).",
    "helm-template-schema": "An object a Helm template renders breaks its schema or names an "
    "unknown kind; reported at the template line (or include/toYaml action) that wrote it.",
    "helm-render": "A Helm chart does not render: Helm's error at the template line (required, "
    "fail, nil values, syntax), a render cut short by its time or size limit, or dependencies "
    "missing from charts/.",
    "stack-schema": "A ktl stack.yaml/release.yaml field is missing, unknown or invalid.",
    "stack-missing-need": "A release needs a release name that does not exist in its cluster.",
    "stack-cycle": "Releases need each other in a cycle.",
    "stack-duplicate-release": "Two releases share an id, or a name within one cluster.",
    "stack-missing-path": "A chart or values path does not exist.",
    "stack-nested-root": "Stacks of their own below a stack root are checked as their own roots; "
    "ktl stack run from the outer root collects them too.",
    "ktl-config": "A .ktl.yaml setting is unknown or invalid.",
    "plan-schema": "A plan file breaks the plan format.",
    "plan-duplicate-id": "Two plan nodes share an id.",
    "plan-unknown-dep": "A plan node depends on an id that does not exist.",
    "plan-cycle": "Plan nodes depend on each other in a cycle.",
    "plan-claim-conflict": "Two independent nodes claim overlapping paths; they will not run "
    "at the same time.",
}
