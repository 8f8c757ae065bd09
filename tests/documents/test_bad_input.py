"""Bad input: bounded work, one clear finding, never an exception to the caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktl_lsp.checks import Workspace, check_paths
from ktl_lsp.documents import parse_text, read_text_file, yaml_parse


def _only(path: Path) -> tuple[str, str]:
    findings = check_paths([path])[path.resolve()]
    assert len(findings) == 1, findings
    return findings[0].code, findings[0].message


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "image.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 10)
    code, message = _only(path)
    assert code == "file-binary" and "binary" in message


def test_fifty_megabyte_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: cheap to create, 50 MB to a reader
    code, message = _only(path)
    assert code == "file-too-large" and "50.0 MiB" in message


def test_large_text_from_the_editor(tmp_path: Path) -> None:
    workspace = Workspace()
    path = tmp_path / "big.yaml"
    workspace.update(path, "a: b\n" * (4 * 1024 * 1024))  # 20 MiB of text
    [finding] = workspace.findings_for(path)
    assert finding.code == "file-too-large"


def test_billion_laughs(tmp_path: Path) -> None:
    lines = ['a0: &a0 "lol"']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    code, message = _only(path)
    assert code == "yaml-too-complex" and "alias" in message


def test_recursive_alias(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("a: &x [1, *x]\n")
    code, message = _only(path)
    assert code == "yaml-too-complex" and "recursive" in message


def test_ten_thousand_deep_nesting(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("a: " + "[" * 10_000 + "]" * 10_000 + "\n")
    code, message = _only(flow)
    assert code == "yaml-syntax" and "nesting" in message
    block = tmp_path / "block.yaml"
    block.write_text("".join(" " * i + "k:\n" for i in range(2_000)))
    code, _ = _only(block)
    assert code == "yaml-syntax"


def test_a_document_of_millions_of_nodes_is_not_composed(tmp_path: Path) -> None:
    # 1.2 MB of text: ~240 MB composed before the limit, gigabytes at the size limit.
    path = tmp_path / "zeros.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nlist: [" + "0," * 600_000 + "0]\n")
    code, message = _only(path)
    assert code == "yaml-too-complex" and "500,000 YAML nodes in one document" in message


def test_documents_past_the_files_node_budget_are_not_composed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(yaml_parse, "MAX_FILE_NODES", 1_000)
    pairs = ", ".join(f"k{i}: v" for i in range(300))
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {" + pairs + "}\n"
    parsed = parse_text("---\n".join([doc] * 6))
    # Each document is ~610 nodes: the first two are composed, the rest are not.
    assert len(parsed.documents) == 2
    [problem] = parsed.problems
    assert problem.code == "yaml-too-complex" and problem.severity == "warning"
    assert "from here on are not checked" in problem.message
    # At the third document's `---`.
    assert parsed.text.splitlines()[problem.range.start.line] == "---"
    assert problem.range.start.line == 2 * doc.count("\n") + 1


def test_deep_but_parseable_nesting_is_refused_before_checkers_recurse(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\ndata: " + "[" * 900 + "]" * 900 + "\n")
    code, message = _only(path)
    assert code == "yaml-too-complex" and "nesting" in message


def test_invalid_utf8_points_at_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"a: 1\nname: caf\xe9\n")
    result = read_text_file(path)
    assert result.text is None and result.problem is not None
    assert result.problem.range.start.line == 1 and result.problem.range.start.character == 9
    code, message = _only(path)
    assert code == "file-encoding" and "0xe9" in message


def test_nul_in_editor_text() -> None:
    parsed = parse_text("a: \x00\n")
    assert [p.code for p in parsed.problems] == ["file-binary"]
