"""`secret://` references in Helm values files, against the providers ktl would configure.

ktl resolves these at deploy time and fails the whole command on the
first bad one; reporting each at its exact scalar turns that late failure into an edit-time one.
Parsing and wording follow ktl's resolver so the editor says what `ktl apply` would. Nothing is
cached here: configs are re-read through the `FileSource` on every check, so an edited
`.ktl.yaml` (or an open, unsaved buffer of it) is never shadowed by a stale copy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ktl_lsp.checks.findings import Finding, Severity
from ktl_lsp.checks.schema_engine import node_range
from ktl_lsp.documents.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ktl_lsp.documents.yaml_nodes import STR, get, json_kind, mapping_pairs, scalar_text
from ktl_lsp.documents.yaml_parse import ParsedText

CODE = "helm-values-secret"
PREFIX = "secret://"
REPO_CONFIG = ".ktl.yaml"
MAX_FINDINGS = 200


class FileSource(Protocol):
    def parsed_of(self, path: Path) -> ParsedText | None: ...


# -- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Provider:
    """One `secrets.providers.<name>` entry, with the settings this checker uses."""

    name: str
    type: str
    path: str


@dataclass(frozen=True, slots=True)
class SecretsConfig:
    """The merged `secrets` section: home config first, the repository's on top."""

    default_provider: str = ""
    providers: dict[str, Provider] = field(default_factory=dict)
    base_dir: Path | None = None
    """Where relative file-provider paths start: the repo root, as in ktl (None: ktl's cwd)."""

    def over(self, top: SecretsConfig) -> SecretsConfig:
        """`top` merged over this one: a non-empty default wins, same-named providers replace."""
        return SecretsConfig(
            top.default_provider or self.default_provider,
            {**self.providers, **top.providers},
            top.base_dir or self.base_dir,
        )


def find_repo_root(start: Path) -> Path | None:
    """The first directory from `start` up holding a `.git` dir, a `go.mod` or a `.ktl.yaml`."""
    for directory in [start, *start.parents]:
        if (
            (directory / ".git").is_dir()
            or (directory / "go.mod").is_file()
            or (directory / REPO_CONFIG).is_file()
        ):
            return directory
    return None


def _home() -> Path | None:
    try:
        return Path.home()
    except (RuntimeError, KeyError):
        return None


def load_secrets_config(
    values_path: Path, source: FileSource, home: Path | None = None
) -> SecretsConfig | None:
    """The secrets config ktl would use for a values file; None when a config file is broken.

    A broken file makes ktl fail before resolving anything, and that file gets its own syntax
    diagnostics; guessing around it would only add noise here.
    """
    home = home if home is not None else _home()
    merged = SecretsConfig()
    if home is not None:
        global_config = _read_config(home / ".ktl" / "config.yaml", source)
        if global_config is None:
            return None
        merged = merged.over(global_config)
    root = find_repo_root(values_path.parent)
    if root is not None:
        repo_config = _read_config(root / REPO_CONFIG, source)
        if repo_config is None:
            return None
        merged = merged.over(repo_config)
    return SecretsConfig(merged.default_provider, merged.providers, root)


def _read_config(path: Path, source: FileSource) -> SecretsConfig | None:
    """The `secrets` section of one config file; a missing or empty file is an empty config."""
    parsed = source.parsed_of(path)
    if parsed is None:
        return None if path.exists() else SecretsConfig()
    ok, root = _first_root(parsed)
    if not ok:
        return None
    secrets = get(root, "secrets")
    providers: dict[str, Provider] = {}
    entries = get(secrets, "providers")
    if isinstance(entries, MappingNode):
        for key, value in mapping_pairs(entries):
            name = (scalar_text(key) or "").strip()
            if name:
                providers[name] = Provider(name, _text(value, "type").lower(), _text(value, "path"))
    default = (scalar_text(get(secrets, "defaultProvider")) or "").strip()
    return SecretsConfig(default, providers)


def _text(node: Node | None, key: str) -> str:
    return (scalar_text(get(node, key)) or "").strip()


def _first_root(parsed: ParsedText) -> tuple[bool, Node | None]:
    """(parses cleanly, root of the first document): ktl decodes only the first document."""
    if any(p.severity == "error" for p in parsed.problems):
        return False, None
    if not parsed.documents:
        return True, None
    document = parsed.documents[0]
    if any(p.severity == "error" for p in document.chunk.problems):
        return False, None
    return True, document.root


# -- references ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecretRef:
    provider: str
    path: str


def _quote(text: str) -> str:
    """Close to Go's %q, which ktl's messages use."""
    return json.dumps(text, ensure_ascii=False)


def parse_ref(value: str, default_provider: str) -> SecretRef | str | None:
    """The reference in `value`, an error message, or None when it is no reference at all.

    Mirrors ktl's ParseRef: `secret://a/b/c` is provider `a`, path `b/c` (the first segment is
    always a provider name, even when a default exists); `secret://x` and `secret:///p/q` use
    the default provider. ktl leaves the reference out of its messages for the empty forms;
    ours always quote it, since the editor shows them away from the value.
    """
    if not value.startswith(PREFIX):
        return None
    ref = _quote(value)
    default = default_provider.strip()
    rest = value[len(PREFIX) :].strip()
    if not rest:
        return f"secret reference {ref} is missing provider/path"
    if rest.startswith("/"):
        rest = rest[1:]
        if not rest:
            return f"secret reference {ref} is missing path"
        if not default:
            return f"secret reference {ref} requires a default provider"
        return SecretRef(default, rest)
    head, slash, tail = rest.partition("/")
    if not slash:
        if not default:
            return f"secret reference {ref} is missing provider"
        return SecretRef(default, head.strip())
    provider, path = head.strip(), tail.strip()
    if not provider:
        if not default:
            return f"secret reference {ref} is missing provider"
        provider = default
    if not path:
        return f"secret reference {ref} is missing path"
    return SecretRef(provider, path)


def string_scalars(node: Node) -> Iterator[ScalarNode]:
    """Every string value under `node` (not mapping keys), each node once despite aliases."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, MappingNode):
            stack.extend(value for _, value in reversed(current.value))
        elif isinstance(current, SequenceNode):
            stack.extend(reversed(current.value))
        elif isinstance(current, ScalarNode) and current.tag == STR:
            yield current


# -- providers ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Resolver:
    """Checks references against one config; reads each secrets file at most once per check."""

    config: SecretsConfig
    source: FileSource
    _files: dict[Path, tuple[Node | None, str | None]] = field(default_factory=dict)

    def problem(self, ref: SecretRef) -> tuple[Severity, str] | None:
        provider = self.config.providers.get(ref.provider)
        if provider is None:
            return "error", f"secret provider {_quote(ref.provider)} is not configured"
        if provider.type != "file":
            return None  # vault and the like are only reachable at deploy time
        message = self._file_problem(provider, ref.path)
        return ("warning", message) if message else None

    def _file_problem(self, provider: Provider, secret_path: str) -> str | None:
        label = f"provider {_quote(provider.name)}"
        if not provider.path:
            return f"{label}: file provider path is required"
        file = self._file_path(provider.path)
        if file is None:
            return None  # relative to ktl's working directory, which we cannot know
        if file not in self._files:
            self._files[file] = self._load(file)
        root, error = self._files[file]
        if error is not None:
            return f"{label}: {error}"
        return _lookup(root, secret_path, str(file))

    def _file_path(self, configured: str) -> Path | None:
        path = Path(configured)
        if not path.is_absolute():
            if self.config.base_dir is None:
                return None
            path = self.config.base_dir / path
        return Path(os.path.normpath(path))

    def _load(self, file: Path) -> tuple[Node | None, str | None]:
        parsed = self.source.parsed_of(file)
        if parsed is None:
            reason = "file does not exist" if not file.exists() else "file cannot be read"
            return None, f"read secrets file {_quote(str(file))}: {reason}"
        ok, root = _first_root(parsed)
        if not ok:
            return None, f"parse secrets file {_quote(str(file))}: not valid YAML"
        return root, None


def _lookup(root: Node | None, secret_path: str, file: str) -> str | None:
    """ktl's file-provider walk: `/`-separated keys, empty segments skipped, a string at the end."""
    where = f"secret path {_quote(secret_path)}"
    current = root if root is not None else MappingNode("tag:yaml.org,2002:map", [])
    for part in secret_path.removeprefix("/").split("/"):
        if not part:
            continue
        if not isinstance(current, MappingNode):
            return f"{where} does not resolve to a value in {file}"
        found = next(
            (v for k, v in mapping_pairs(current) if isinstance(k, ScalarNode) and k.value == part),
            None,
        )
        if found is None:
            return f"{where} not found in {file}"
        current = found
    kind = json_kind(current)
    if kind == "null":
        return f"{where} resolves to empty value in {file}"
    if kind != "string":
        return f"{where} resolved to non-string value in {file}"
    return None


# -- entry point --------------------------------------------------------------------------------


def check_secret_refs(
    path: Path, parsed: ParsedText, source: FileSource, home: Path | None = None
) -> list[Finding]:
    """Findings for every `secret://` value of a values file that ktl could not resolve.

    `home` stands in for the user's home directory (tests); files without the prefix cost one
    substring search and nothing else.
    """
    if PREFIX not in parsed.text:
        return []
    document = next((d for d in parsed.documents if d.root is not None), None)
    if document is None or document.root is None:
        return []
    config = load_secrets_config(path, source, home)
    if config is None:
        return []
    resolver = _Resolver(config, source)
    findings: list[Finding] = []
    for node in string_scalars(document.root):
        parsed_ref = parse_ref(str(node.value), config.default_provider)
        if parsed_ref is None:
            continue
        if isinstance(parsed_ref, str):
            problem: tuple[Severity, str] | None = ("error", parsed_ref)
        else:
            problem = resolver.problem(parsed_ref)
        if problem is not None:
            severity, message = problem
            findings.append(Finding(node_range(node), severity, CODE, message))
            if len(findings) >= MAX_FINDINGS:
                break
    return [f.shifted(document.start_line) for f in findings]
