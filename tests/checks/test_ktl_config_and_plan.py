"""`.ktl.yaml` keys and values; plan files: schema, ids, deps, cycles, claim conflicts."""

from __future__ import annotations

from ktl_lsp.globs import globs_overlap
from tests.checks.conftest import Check, brief


def test_ktl_config(check: Check) -> None:
    findings = check(
        ".ktl.yaml",
        """\
        build:
          profile: fast
          policyMode: audit
          hermetic: "yes"
          cachDir: /tmp
        secrets:
          defaultProvider: vault
          providers:
            vault: {address: "https://vault", kvVersion: 3}
            local: {type: file, path: secrets.yaml}
        """,
    )
    assert brief(findings) == [
        ("ktl-config", 1, 11, 1, 15, "warning"),
        ("ktl-config", 2, 14, 2, 19, "error"),
        ("ktl-config", 3, 12, 3, 17, "error"),
        ("ktl-config", 4, 2, 4, 9, "warning"),
        ("ktl-config", 8, 4, 8, 9, "error"),
        ("ktl-config", 8, 49, 8, 50, "error"),
    ]
    assert findings[1].message == 'build.policyMode must be enforce|warn (got "audit")'
    assert findings[3].message.startswith('unknown key "build.cachDir" (did you mean "cacheDir"?)')
    assert findings[4].message == "secrets.providers.vault.type is required (file|vault)"


def test_valid_ktl_config(check: Check) -> None:
    assert check(".ktl.yaml", "build: {profile: ci, push: true}\n") == []
    assert check(".ktl.yaml", "") == []


def test_plan_file(check: Check) -> None:
    findings = check(
        "ci.plan.yaml",
        """\
        name: ci
        concurrency: 0
        nodes:
          - id: build
            run: [make, build]
            claims: [{path: "out/**"}]
          - id: test
            run: make test
            deps: [build, lint]
            claims: [{path: "out/test/*", mode: shared}]
          - id: docs
            run: make docs
            claims: [{path: out/docs}]
            retrys: 2
          - id: a
            run: "true"
            deps: [b]
          - id: b
            run: "true"
            deps: [a]
          - id: build
            run: []
        """,
    )
    assert brief(findings) == [
        ("plan-schema", 1, 13, 1, 14, "error"),  # concurrency >= 1
        ("plan-unknown-dep", 8, 18, 8, 22, "error"),
        ("plan-claim-conflict", 12, 20, 12, 28, "information"),  # docs vs build
        ("plan-schema", 13, 4, 13, 10, "warning"),  # unknown key
        ("plan-cycle", 16, 11, 16, 12, "error"),
        ("plan-cycle", 19, 11, 19, 12, "error"),
        ("plan-duplicate-id", 20, 8, 20, 13, "error"),
        ("plan-schema", 21, 9, 21, 11, "error"),  # empty argv
    ]


def test_plan_verify_nodes(check: Check) -> None:
    findings = check(
        "ci.plan.yaml",
        """\
        pauseOn: [warning]
        nodes:
          - id: check
            verify: {resources: [Deployment/web], denyReasons: [BackOff]}
          - id: idle
            deps: [check]
          - id: both
            run: make
            verify: {resources: [web]}
        """,
    )
    assert brief(findings) == [
        ("plan-schema", 4, 8, 4, 12, "error"),  # neither run nor verify
        ("plan-schema", 8, 12, 8, 30, "error"),  # both
        ("plan-schema", 8, 25, 8, 28, "error"),  # not Kind/name
    ]
    assert findings[0].message == 'node "idle" has nothing to do: give it run (a command) or verify'
    assert findings[1].message == 'node "both" has both run and verify: give it one of them'


def test_glob_overlap() -> None:
    assert globs_overlap("src/**", "src/app/main.py")
    assert globs_overlap("out", "out/a/b")
    assert not globs_overlap("src/*.py", "src/pkg/mod.py")
    assert not globs_overlap("docs/**", "src/**")
    assert globs_overlap("**/*.go", "cmd/x/main.go")
