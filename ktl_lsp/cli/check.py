"""`ktl-lsp check`: the editor's diagnostics for CI, as text, JSON or SARIF 2.1.0.

Exit codes: 1 when any error-severity finding is reported, 2 on usage errors, else 0.
JSON lines and characters are 0-based like LSP; text and SARIF use 1-based positions, as
compilers and code-scanning tools expect. Characters are UTF-16 code units throughout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from ktl_lsp.checks.findings import Finding
    from ktl_lsp.cli.output import Subparsers

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
#: Severities as compilers word them in text (information and hint are notes), and as SARIF
#: levels, which use the same words.
SARIF_LEVELS = {"error": "error", "warning": "warning", "information": "note", "hint": "note"}


class _AvailableVersions:
    """The packaged schema versions, looked up when help is shown: the look-up takes ~60 ms,
    which every start of the language server would otherwise pay to build the parser."""

    def __str__(self) -> str:
        from ktl_lsp.checks.k8s_schemas import available_versions

        versions = available_versions()
        return f"{versions[0]}..{versions[-1]}" if versions else "none installed"


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "check",
        help="report the editor's diagnostics for files (for CI)",
        description="Check Kubernetes manifests, Helm values, ktl stacks, .ktl.yaml and plan "
        "files; directories are walked with the editor's file-kind detection.",
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="text for people, json (LSP's 0-based positions) or sarif 2.1.0 for code "
        "scanning (default: %(default)s)",
    )
    k8s_version = p.add_argument(
        "--k8s-version",
        metavar="X.Y",
        help="target Kubernetes version (available: %(available)s; default: newest)",
    )
    vars(k8s_version)["available"] = (
        _AvailableVersions()
    )  # argparse fills %(...)s from vars(action)
    p.add_argument(
        "--helm-renderer",
        choices=("auto", "library", "binary", "none"),
        default="auto",
        help="how Helm charts among the paths are rendered for their template checks: "
        "Helm's Go SDK (the helm extra), a helm binary, either (auto), or not at all "
        "(default: %(default)s)",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files and directories to check")
    p.set_defaults(run=run, default_log_level="WARNING", usage_error=p.error)


def _tool_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("ktl-lsp")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def render_text(results: dict[Path, list[Finding]], cwd: Path, out: TextIO) -> None:
    from ktl_lsp.checks.check_paths import display_path

    counts = {"error": 0, "warning": 0, "information": 0, "hint": 0}
    for path, findings in results.items():
        shown = display_path(path, cwd)
        for f in findings:
            counts[f.severity] += 1
            start = f.range.start
            out.write(
                f"{shown}:{start.line + 1}:{start.character + 1}: {SARIF_LEVELS[f.severity]}: "
                f"{f.message} [{f.code}]\n"
            )
            for related in f.related:
                where = display_path(Path(related.path), cwd) if related.path else shown
                r = related.range.start
                out.write(f"    {where}:{r.line + 1}:{r.character + 1}: {related.message}\n")
    out.write(
        f"{counts['error']} error(s), {counts['warning']} warning(s), "
        f"{counts['information'] + counts['hint']} note(s) in {len(results)} file(s)\n"
    )


def _region(finding_range: Any) -> dict[str, int]:
    return {
        "startLine": finding_range.start.line + 1,
        "startColumn": finding_range.start.character + 1,
        "endLine": finding_range.end.line + 1,
        "endColumn": finding_range.end.character + 1,
    }


def _artifact(path: Path, cwd: Path) -> dict[str, str]:
    try:
        return {"uri": path.relative_to(cwd).as_posix(), "uriBaseId": "SRCROOT"}
    except ValueError:
        return {"uri": path.as_uri()}


def render_sarif(results: dict[Path, list[Finding]], cwd: Path) -> dict[str, Any]:
    from ktl_lsp.checks.rules import RULES

    used = sorted({f.code for findings in results.values() for f in findings} | set(RULES))
    rule_index = {code: i for i, code in enumerate(used)}
    sarif_results: list[dict[str, Any]] = []
    for path, findings in results.items():
        for f in findings:
            result: dict[str, Any] = {
                "ruleId": f.code,
                "ruleIndex": rule_index[f.code],
                "level": SARIF_LEVELS[f.severity],
                "message": {"text": f.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": _artifact(path, cwd),
                            "region": _region(f.range),
                        }
                    }
                ],
            }
            if f.related:
                result["relatedLocations"] = [
                    {
                        "id": i,
                        "message": {"text": r.message},
                        "physicalLocation": {
                            "artifactLocation": _artifact(Path(r.path) if r.path else path, cwd),
                            "region": _region(r.range),
                        },
                    }
                    for i, r in enumerate(f.related)
                ]
            sarif_results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "ktl-lsp",
                        "version": _tool_version(),
                        "informationUri": "https://github.com/kubekattle/ktl",
                        "rules": [
                            {
                                "id": code,
                                "shortDescription": {"text": RULES.get(code, code)},
                            }
                            for code in used
                        ],
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": cwd.as_uri() + "/"}},
                "columnKind": "utf16CodeUnits",
                "results": sarif_results,
            }
        ],
    }


def run(args: argparse.Namespace) -> int:
    from ktl_lsp.checks.check_paths import check_paths, findings_json
    from ktl_lsp.checks.k8s_schemas import UnsupportedVersionError, resolve_version
    from ktl_lsp.helm.check_charts import add_chart_findings

    usage_error: Callable[[str], NoReturn] = args.usage_error
    try:
        version = resolve_version(args.k8s_version)
    except UnsupportedVersionError as error:
        usage_error(str(error))
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        usage_error(f"no such file or directory: {missing[0]}")
    results = check_paths(args.paths, version)
    unrendered = add_chart_findings(results, args.paths, version, args.helm_renderer)
    if unrendered:
        sys.stderr.write(f"ktl-lsp: {unrendered}\n")
    cwd = Path.cwd().resolve()
    if args.format == "json":
        json.dump(findings_json(results, cwd), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.format == "sarif":
        json.dump(render_sarif(results, cwd), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_text(results, cwd, sys.stdout)
    failed = any(f.severity == "error" for findings in results.values() for f in findings)
    return 1 if failed else 0
