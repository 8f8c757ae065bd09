"""`secret://` references in Helm values files, against the merged home and repo `.ktl.yaml`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ktl_lsp.checks import Finding, Workspace, check_paths, secret_refs
from ktl_lsp.checks.secret_refs import SecretRef, find_repo_root, parse_ref

Brief = tuple[int, int, int, int, str, str]


def brief(findings: list[Finding]) -> list[Brief]:
    """(line, start, end line, end, severity, message) of the secret findings only."""
    return [
        (
            f.range.start.line,
            f.range.start.character,
            f.range.end.line,
            f.range.end.character,
            f.severity,
            f.message,
        )
        for f in findings
        if f.code == "helm-values-secret"
    ]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home directory: the developer's own ~/.ktl/config.yaml must never leak in."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


@pytest.fixture
def repo(tmp_path: Path, home: Path) -> Path:
    """A repository (marked by `.git`) holding a chart at `chart/`."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    write(root / "chart" / "Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n")
    return root


def check_values(repo: Path, text: str, name: str = "values.yaml") -> list[Brief]:
    path = write(repo / "chart" / name, text)
    return brief(check_paths([path])[path.resolve()])


FILE_PROVIDERS = """\
secrets:
  defaultProvider: local
  providers:
    local:
      type: file
      path: secrets/local.yaml
    a:
      type: file
      path: secrets/a.yaml
"""


def test_each_parse_error_uses_ktls_wording(repo: Path) -> None:
    findings = check_values(
        repo,
        """\
        one: secret://db
        two: secret:///db/password
        three: secret://a/
        four: secret://
        five: "secret:///"
        six: secret://nope/x
        """,
    )
    assert findings == [
        (0, 5, 0, 16, "error", 'secret reference "secret://db" is missing provider'),
        (1, 5, 1, 26, "error", 'secret reference "secret:///db/password" requires a default provider'),
        (2, 7, 2, 18, "error", 'secret reference "secret://a/" is missing path'),
        (3, 6, 3, 15, "error", 'secret reference "secret://" is missing provider/path'),
        (4, 6, 4, 18, "error", 'secret reference "secret:///" is missing path'),
        (5, 5, 5, 20, "error", 'secret provider "nope" is not configured'),
    ]  # fmt: skip


def test_the_three_forms_resolve_through_the_file_provider(repo: Path) -> None:
    write(repo / ".ktl.yaml", FILE_PROVIDERS)
    write(repo / "secrets" / "local.yaml", "token: t0k3n\ndb:\n  password: hunter2\n")
    write(repo / "secrets" / "a.yaml", "b:\n  c: deep\n")
    findings = check_values(
        repo,
        """\
        explicit: secret://local/db/password
        default: secret:///db/password
        bare: secret://token
        nested: secret://a/b/c
        list:
          - secret://local/token
          - {inline: "secret:///token"}
        """,
    )
    assert findings == []


def test_first_segment_is_always_the_provider(repo: Path) -> None:
    """`secret://db/password` names provider `db`, even when a default provider exists."""
    write(repo / ".ktl.yaml", FILE_PROVIDERS)
    write(repo / "secrets" / "local.yaml", "db:\n  password: hunter2\n")
    findings = check_values(repo, "password: secret://db/password\n")
    assert findings == [(0, 10, 0, 30, "error", 'secret provider "db" is not configured')]
    assert parse_ref("secret://db/password", "local") == SecretRef("db", "password")
    assert parse_ref("secret:///db/password", "local") == SecretRef("local", "db/password")
    assert parse_ref("secret://db", "local") == SecretRef("local", "db")
    assert parse_ref("secret://a/b/c", "") == SecretRef("a", "b/c")
    assert parse_ref(" secret://a/b", "") is None  # ktl only looks at the start of the value


def test_without_any_config_every_reference_needs_a_provider(repo: Path) -> None:
    findings = check_values(
        repo,
        "a: secret://vault/app/key\nb: secret:///app/key\nc: secret://key\n",
    )
    assert [f[-1] for f in findings] == [
        'secret provider "vault" is not configured',
        'secret reference "secret:///app/key" requires a default provider',
        'secret reference "secret://key" is missing provider',
    ]


def test_values_outside_any_repository_use_the_home_config(tmp_path: Path, home: Path) -> None:
    write(home / ".ktl" / "config.yaml", "secrets:\n  defaultProvider: v\n  providers:\n    v: {type: vault}\n")  # fmt: skip
    chart = tmp_path / "loose" / "chart"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n")
    if find_repo_root(chart) is not None:
        pytest.skip("the temporary directory sits inside a repository")
    assert check_values(chart.parent, "a: secret:///x\nb: secret://w/x\n") == [
        (1, 3, 1, 15, "error", 'secret provider "w" is not configured')
    ]


def test_repo_default_provider_overrides_the_home_one(repo: Path, home: Path) -> None:
    write(
        home / ".ktl" / "config.yaml",
        f"""\
        secrets:
          defaultProvider: mine
          providers:
            mine: {{type: file, path: {home / "mine.yaml"}}}
        """,
    )
    write(home / "mine.yaml", "only_in_home: x\n")
    values = "a: secret:///only_in_home\n"
    assert check_values(repo, values) == []  # the home default applies without a repo config

    write(repo / ".ktl.yaml", FILE_PROVIDERS)
    write(repo / "secrets" / "local.yaml", "other: y\n")
    local = (repo / "secrets" / "local.yaml").resolve()
    assert check_values(repo, values) == [
        (0, 3, 0, 25, "warning", f'secret path "only_in_home" not found in {local}')
    ]
    assert check_values(repo, "a: secret://mine/only_in_home\n") == []  # still configured


def test_repo_provider_replaces_the_whole_home_entry(repo: Path, home: Path) -> None:
    write(
        home / ".ktl" / "config.yaml",
        f"""\
        secrets:
          providers:
            shared: {{type: file, path: {home / "shared.yaml"}}}
        """,
    )
    write(home / "shared.yaml", "key: x\n")
    values = "a: secret://shared/key\nb: secret://shared/absent\n"
    assert [f[-1] for f in check_values(repo, values)] == [
        f'secret path "absent" not found in {(home / "shared.yaml").resolve()}'
    ]
    # A repo entry with the same name wins whole: no path is inherited from the home entry.
    write(repo / ".ktl.yaml", "secrets:\n  providers:\n    shared:\n      type: file\n")
    assert [f[-1] for f in check_values(repo, values)] == [
        'provider "shared": file provider path is required'
    ] * 2
    # ... and a vault is never read.
    write(repo / ".ktl.yaml", "secrets:\n  providers:\n    shared: {type: vault, address: http://v}\n")  # fmt: skip
    assert check_values(repo, values) == []


def test_file_provider_problems_are_warnings(repo: Path) -> None:
    write(repo / ".ktl.yaml", FILE_PROVIDERS)
    write(
        repo / "secrets" / "local.yaml",
        """\
        db:
          password: hunter2
          port: 5432
          tls: {cert: c}
          empty:
        flat: s
        """,
    )
    local = (repo / "secrets" / "local.yaml").resolve()
    findings = check_values(
        repo,
        """\
        ok: secret://local/db/password
        missing: secret://local/db/user
        number: secret://local/db/port
        mapping: secret:///db/tls
        empty: secret:///db/empty
        through: secret:///flat/deeper
        nofile: secret://a/b
        """,
    )
    missing_file = (repo / "secrets" / "a.yaml").resolve()
    assert findings == [
        (1, 9, 1, 31, "warning", f'secret path "db/user" not found in {local}'),
        (2, 8, 2, 30, "warning", f'secret path "db/port" resolved to non-string value in {local}'),
        (3, 9, 3, 25, "warning", f'secret path "db/tls" resolved to non-string value in {local}'),
        (4, 7, 4, 25, "warning", f'secret path "db/empty" resolves to empty value in {local}'),
        (5, 9, 5, 30, "warning", f'secret path "flat/deeper" does not resolve to a value in {local}'),
        (6, 8, 6, 20, "warning", f'provider "a": read secrets file "{missing_file}": file does not exist'),
    ]  # fmt: skip


def test_only_string_values_count_and_ranges_follow_the_document(repo: Path) -> None:
    findings = check_values(
        repo,
        """\
        # leading comment
        ---
        secret://as-a-key: 1
        quoted: 'secret://q'
        text: "see secret://x"
        padded: " secret://x"
        anchors:
          first: &ref secret://p/x
          again: *ref
        """,
    )
    assert findings == [
        (3, 8, 3, 20, "error", 'secret reference "secret://q" is missing provider'),
        (7, 9, 7, 26, "error", 'secret provider "p" is not configured'),  # the node's anchor too
    ]


def test_relative_file_paths_start_at_the_repo_root(repo: Path) -> None:
    write(repo / ".ktl.yaml", "secrets:\n  providers:\n    f: {type: file, path: s.yaml}\n")
    write(repo / "chart" / "s.yaml", "k: beside the chart, not at the root\n")
    expected = (repo / "s.yaml").resolve()
    assert [f[-1] for f in check_values(repo, "a: secret://f/k\n")] == [
        f'provider "f": read secrets file "{expected}": file does not exist'
    ]
    write(repo / "s.yaml", "k: v\n")
    assert check_values(repo, "a: secret://f/k\n") == []


def test_go_mod_and_ktl_yaml_mark_the_repo_root(tmp_path: Path) -> None:
    (tmp_path / "a" / ".git").mkdir(parents=True)
    write(tmp_path / "a" / "b" / "go.mod", "module x\n")
    write(tmp_path / "a" / "b" / "c" / ".ktl.yaml", "")
    (tmp_path / "a" / "b" / "c" / "d").mkdir()
    assert find_repo_root(tmp_path / "a" / "b" / "c" / "d") == tmp_path / "a" / "b" / "c"
    assert find_repo_root(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    (tmp_path / "a" / "x").mkdir()
    assert find_repo_root(tmp_path / "a" / "x") == tmp_path / "a"


def test_a_broken_config_reports_nothing_here(repo: Path) -> None:
    """ktl stops at the config; `.ktl.yaml` shows its own syntax error instead."""
    write(repo / ".ktl.yaml", "secrets: [unclosed\n")
    assert check_values(repo, "a: secret://x/y\n") == []


def test_the_editor_buffer_of_ktl_yaml_wins_over_the_disk(repo: Path) -> None:
    write(repo / ".ktl.yaml", "")
    values = write(repo / "chart" / "values.yaml", "a: secret://v/x\n")
    workspace = Workspace()
    workspace.load(values)
    assert [f.message for f in workspace.findings_for(values)] == [
        'secret provider "v" is not configured'
    ]
    workspace.update(repo / ".ktl.yaml", "secrets:\n  providers:\n    v: {type: vault}\n")
    assert workspace.findings_for(values) == []


def test_files_without_references_do_no_work(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the config was read for a file without references")

    monkeypatch.setattr(secret_refs, "load_secrets_config", refuse)
    assert check_values(repo, "image: nginx\nurl: https://example.com\n") == []


def test_helm_templates_are_not_checked(repo: Path) -> None:
    path = write(repo / "chart" / "values.yaml", "a: {{ .Values.x }}\nb: secret://x\n")
    assert check_paths([path])[path.resolve()] == []


def test_schema_and_secret_findings_together(repo: Path) -> None:
    write(
        repo / "chart" / "values.schema.json",
        '{"type": "object", "properties": {"replicas": {"type": "integer"}}}',
    )
    path = write(repo / "chart" / "values.yaml", "replicas: two\npassword: secret://x\n")
    findings = check_paths([path])[path.resolve()]
    assert [(f.code, f.range.start.line) for f in findings] == [
        ("helm-values-schema", 0),
        ("helm-values-secret", 1),
    ]
