"""Typed settings from ``initializationOptions``; a bad value is reported and its default kept.

Settings go through the same conversion as command arguments (``ktl_lsp/lsp/arguments.py``),
leniently: each value that does not fit is named in ``problems`` and left at its default, so
one typo never turns the whole configuration off.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from lsprotocol import types as lsp

from ktl_lsp.host import DEFAULT_IDLE_TIMEOUT_S
from ktl_lsp.k8s.guard import ContextPolicy
from ktl_lsp.lsp.arguments import lenient
from ktl_lsp.lsp.transport import MIN_MAX_MESSAGE_BYTES, default_max_message_bytes
from ktl_lsp.sessions.redact import PatternError, Redaction, compile_rule
from ktl_lsp.sessions.retention import RetentionPolicy


@dataclass
class GatewaySettings:
    """The replay gateway in this process: on, where, which port (0 = any free one)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 0

    def check(self) -> None:
        if not self.host:
            raise ValueError("must not be empty")
        if not 0 <= self.port < 65536:
            raise ValueError("must be a port number (0-65535)")


@dataclass
class AgentSettings:
    """A remote gateway (ours or ktl-agent's) whose sessions are listed and can be attached to."""

    url: str | None = None
    token: str | None = None  #: else ``$KTL_AGENT_TOKEN``
    #: Over https: trust only this CA, present this client certificate (mutual TLS), and
    #: expect this name in the server's certificate instead of the URL's host.
    ca_file: str | None = field(default=None, metadata={"json": "caFile"})
    cert_file: str | None = field(default=None, metadata={"json": "certFile"})
    key_file: str | None = field(default=None, metadata={"json": "keyFile"})
    server_name: str | None = field(default=None, metadata={"json": "serverName"})

    def check(self) -> None:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")


@dataclass
class AgentsSettings:
    """What MCP agents may change (docs/agents.md): nothing unless ``allowWrite``; then each
    changing call asks a person unless an ``allow`` entry matches it."""

    allow_write: bool = field(default=False, metadata={"json": "allowWrite"})
    #: ``[{tool: run, argv: [make, test]}]`` (``agents/writes.py``: ``matches``)
    allow: list[dict[str, Any]] = field(default_factory=list)
    #: Seconds a call waits for a person's answer; none in time is no.
    approval_timeout: float = field(default=120.0, metadata={"json": "approvalTimeout"})

    def check(self) -> None:
        from ktl_lsp.agents.writes import entry_problem

        if self.approval_timeout <= 0:
            raise ValueError("approvalTimeout must be more than 0 seconds")
        for entry in self.allow:
            problem = entry_problem(entry)
            if problem:
                raise ValueError(problem)


@dataclass
class RedactSettings:
    """Replace well-known secrets (and these extra patterns) in recorded output."""

    enabled: bool = False  # opt-in: the scanner costs throughput (see docs/security.md)
    #: regexes, or ``{name, pattern}``; kept as (name, pattern) once they compile
    patterns: list[str | dict[str, str]] = field(default_factory=list)

    def check(self) -> None:
        for i, item in enumerate(self.patterns):
            name, pattern = _pattern(i, item)
            try:
                compile_rule(name, pattern)
            except PatternError as exc:
                raise ValueError(str(exc)) from exc

    def rules(self) -> list[tuple[str, str]]:
        return [_pattern(i, item) for i, item in enumerate(self.patterns)]


@dataclass
class SessionsSettings:
    """Sessions that outlive the editor: ``ktl.run`` and ``ktl.shell`` run in the session host."""

    persist: bool = False
    #: Seconds the host waits with no client and no running session before it ends.
    host_idle_timeout: float = field(
        default=DEFAULT_IDLE_TIMEOUT_S, metadata={"json": "hostIdleTimeout"}
    )

    def check(self) -> None:
        if self.host_idle_timeout < 0:
            raise ValueError("must not be negative")


@dataclass
class K8sSettings:
    """Contexts (kubeconfig context names, shell globs like ``prod-*``) guarded from changes."""

    #: Each change (apply, delete, exec, port-forward, a plan's Job) asks a person first.
    protected_contexts: list[str] = field(
        default_factory=list, metadata={"json": "protectedContexts"}
    )
    #: Changes are refused outright, saying which setting refused them.
    read_only_contexts: list[str] = field(
        default_factory=list, metadata={"json": "readOnlyContexts"}
    )

    def policy(self) -> ContextPolicy:
        return ContextPolicy(tuple(self.read_only_contexts), tuple(self.protected_contexts))


@dataclass
class HelmSettings:
    """How charts are rendered for their template checks (docs/protocol.md, Helm charts)."""

    #: "auto": Helm's Go SDK (the helm extra), else a helm binary on PATH; "none": no renders.
    renderer: Literal["auto", "library", "binary", "none"] = "auto"
    #: Seconds one render may take before it is stopped and reported cut short.
    render_timeout: float = field(default=10.0, metadata={"json": "renderTimeout"})
    #: Chart directory (absolute, or relative to the first workspace folder) -> values files
    #: (relative to the chart) rendered as renders of their own.
    values_files: dict[str, list[str]] = field(
        default_factory=dict, metadata={"json": "valuesFiles"}
    )

    def check(self) -> None:
        if self.render_timeout <= 0:
            raise ValueError("must be more than 0 seconds")


def _pattern(i: int, item: str | dict[str, str]) -> tuple[str, str]:
    if isinstance(item, str):
        return f"pattern-{i + 1}", item
    if isinstance(item.get("pattern"), str):
        return item.get("name") or f"pattern-{i + 1}", item["pattern"]
    raise ValueError(f"pattern {i + 1} should be a regex or {{name, pattern}}")


@dataclass
class Switch:
    """A language feature the editor may turn off (another server answers it, say)."""

    enabled: bool = True


#: The setting (a `Switch` of `Settings`) that turns each request off: a request whose switch
#: is off gets an empty answer (``null``; a resolve request its item back unchanged).
SWITCHED: dict[str, str] = {
    lsp.TEXT_DOCUMENT_COMPLETION: "completion",
    lsp.COMPLETION_ITEM_RESOLVE: "completion",
    lsp.TEXT_DOCUMENT_HOVER: "hover",
    lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL: "symbols",
    lsp.WORKSPACE_SYMBOL: "symbols",
    lsp.TEXT_DOCUMENT_CODE_ACTION: "code_actions",
    lsp.TEXT_DOCUMENT_CODE_LENS: "code_lens",
    lsp.CODE_LENS_RESOLVE: "code_lens",
    lsp.TEXT_DOCUMENT_DEFINITION: "definition",
    lsp.TEXT_DOCUMENT_REFERENCES: "references",
}


@dataclass
class Settings:
    #: Send raw terminal output as ``ktl/sessionData`` (editors that show a terminal opt in).
    session_data: bool = field(default=False, metadata={"json": "sessionData"})
    #: Send ``ktl/resources`` (the cluster explorer's watches) to this editor.
    resources: bool = False
    #: Bytes of one session's output sent as logMessage lines before switching to summaries.
    log_message_limit: int = field(default=4 * 1024 * 1024, metadata={"json": "logMessageLimit"})
    #: Kubernetes version to validate manifests against ("1.30"); None means the newest packaged.
    k8s_version: str | None = field(default=None, metadata={"json": "k8sVersion"})
    #: The largest message taken from the editor, in bytes; a larger one is refused and
    #: skipped. Its default, 64 MiB, can be set before ``initialize`` by
    #: ``$KTL_LSP_MAX_MESSAGE_BYTES``.
    max_message_bytes: int = field(
        default_factory=default_max_message_bytes, metadata={"json": "maxMessageBytes"}
    )
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    sessions: SessionsSettings = field(default_factory=SessionsSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    agents: AgentsSettings = field(default_factory=AgentsSettings)
    redact: RedactSettings = field(default_factory=RedactSettings)
    helm: HelmSettings = field(default_factory=HelmSettings)
    k8s: K8sSettings = field(default_factory=K8sSettings)
    # The language features, each on unless turned off; the only settings that
    # `workspace/didChangeConfiguration` changes (see `changed`).
    completion: Switch = field(default_factory=Switch)
    hover: Switch = field(default_factory=Switch)
    symbols: Switch = field(default_factory=Switch)
    code_actions: Switch = field(default_factory=Switch, metadata={"json": "codeActions"})
    code_lens: Switch = field(default_factory=Switch, metadata={"json": "codeLens"})
    definition: Switch = field(default_factory=Switch)
    references: Switch = field(default_factory=Switch)
    diagnostics: Switch = field(default_factory=Switch)
    #: What was wrong with the options given (said once to the user); not a setting.
    problems: list[str] = field(default_factory=list, metadata={"json": ""})

    def check(self) -> None:
        if self.log_message_limit < 0:
            raise ValueError("must not be negative")
        if self.max_message_bytes < MIN_MAX_MESSAGE_BYTES:
            raise ValueError(f"must be at least {MIN_MAX_MESSAGE_BYTES} (1 MiB)")

    def redaction(self) -> Redaction | None:
        return Redaction.build(self.redact.enabled, self.redact.rules())

    @classmethod
    def from_options(cls, options: Any) -> Settings:
        """Unknown top-level keys are other tools' and pass quietly. A ``redact`` section that
        does not say ``enabled`` turns redaction on (giving patterns means wanting them used)."""
        problems: list[str] = []
        if isinstance(options, dict) and isinstance(options.get("redact"), dict):
            options = {**options, "redact": {"enabled": True, **options["redact"]}}
        settings = lenient(cls, {} if options is None else options, "", problems)
        return dataclasses.replace(settings, problems=problems)

    def answers(self, method: str) -> bool:
        """Whether the request ``method`` gets a real answer (its switch, if any, is on)."""
        name = SWITCHED.get(method)
        return name is None or bool(getattr(self, name).enabled)

    def changed(self, options: Any) -> Settings:
        """These settings with the switches ``options`` names (``workspace/didChangeConfiguration``
        settings, or their ``ktl`` object): a switch left out keeps its value, every other key
        takes a restart and is ignored. ``problems`` are the ones of ``options``."""
        if isinstance(options, dict) and isinstance(options.get("ktl"), dict):
            options = options["ktl"]
        if not isinstance(options, dict):
            return dataclasses.replace(self, problems=[])
        switches = {
            f.metadata.get("json", f.name): f.name
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), Switch)
        }
        given = {k: v for k, v in options.items() if k in switches}
        new = Settings.from_options(given)
        values = {switches[k]: getattr(new, switches[k]) for k in given}
        return dataclasses.replace(self, **values, problems=new.problems)
