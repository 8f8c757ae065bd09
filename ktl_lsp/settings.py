"""Typed settings from ``initializationOptions``; a bad value is reported and its default kept."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ktl_lsp.sessions.redact import PatternError, Redaction, compile_rule
from ktl_lsp.sessions.retention import RetentionPolicy


@dataclass
class Settings:
    #: Send raw terminal output as ``ktl/sessionData`` (editors that show a terminal opt in).
    session_data: bool = False
    #: Bytes of one session's output sent as logMessage lines before switching to summaries.
    log_message_limit: int = 4 * 1024 * 1024
    #: Kubernetes version to validate manifests against ("1.30"); None means the newest packaged.
    k8s_version: str | None = None
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    #: The replay gateway in this process: on, where, which port (0 = any free one).
    gateway_enabled: bool = True
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 0
    #: A remote gateway (ours or ktl-agent's) whose sessions are listed and can be attached to.
    agent_url: str | None = None
    agent_token: str | None = None
    #: Replace well-known secrets (and these extra (name, regex) patterns) in recorded output.
    redact_enabled: bool = False  # opt-in: the scanner costs throughput (see docs/security.md)
    redact_patterns: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def redaction(self) -> Redaction | None:
        return Redaction.build(self.redact_enabled, self.redact_patterns)

    @classmethod
    def from_options(cls, options: Any) -> Settings:
        settings = cls()
        if options is None:
            return settings
        if not isinstance(options, dict):
            settings.problems.append("initializationOptions should be an object; using defaults")
            return settings
        names = {
            "sessionData": ("session_data", bool),
            "logMessageLimit": ("log_message_limit", int),
            "k8sVersion": ("k8s_version", str),
        }
        for key, value in options.items():
            if key == "retention":
                settings.retention = _retention(value, settings.problems)
                continue
            if key == "gateway":
                _gateway(settings, value)
                continue
            if key == "agent":
                _agent(settings, value)
                continue
            if key == "redact":
                _redact(settings, value)
                continue
            if key not in names:
                continue  # other tools' keys and later settings pass through quietly
            attr, tp = names[key]
            if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
                setattr(settings, attr, value)
            else:
                default = getattr(cls(), attr)
                settings.problems.append(
                    f"setting {key!r} should be {tp.__name__}, got {value!r}; using {default!r}"
                )
        return settings

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "problems"}


_RETENTION_KEYS = {
    "maxSessions": ("max_sessions", int),
    "maxFramesPerSession": ("max_frames_per_session", int),
    "maxStoreBytes": ("max_store_bytes", int),
    "maxAgeDays": ("max_age_days", float),
    "intervalS": ("interval_s", float),
}


def _retention(value: Any, problems: list[str]) -> RetentionPolicy:
    policy = RetentionPolicy()
    if not isinstance(value, dict):
        problems.append("setting 'retention' should be an object; using defaults")
        return policy
    for key, item in value.items():
        if key not in _RETENTION_KEYS:
            problems.append(f"unknown retention setting {key!r}; ignored")
            continue
        attr, tp = _RETENTION_KEYS[key]
        ok = isinstance(item, int | float) and not isinstance(item, bool) and item >= 0
        if tp is int and ok and int(item) != item:
            ok = False
        if not ok:
            problems.append(
                f"retention setting {key!r} should be a non-negative number, got {item!r}; "
                f"using {getattr(policy, attr)!r}"
            )
            continue
        setattr(policy, attr, tp(item))
    return policy


def _gateway(settings: Settings, value: Any) -> None:
    if not isinstance(value, dict):
        settings.problems.append("setting 'gateway' should be an object; using defaults")
        return
    enabled, host, port = (
        value.get("enabled", True),
        value.get("host", "127.0.0.1"),
        value.get("port", 0),
    )
    if isinstance(enabled, bool):
        settings.gateway_enabled = enabled
    else:
        settings.problems.append(f"gateway setting 'enabled' should be a boolean, got {enabled!r}")
    if isinstance(host, str) and host:
        settings.gateway_host = host
    else:
        settings.problems.append(f"gateway setting 'host' should be a string, got {host!r}")
    if isinstance(port, int) and not isinstance(port, bool) and 0 <= port < 65536:
        settings.gateway_port = port
    else:
        settings.problems.append(f"gateway setting 'port' should be a port number, got {port!r}")


def _agent(settings: Settings, value: Any) -> None:
    if not isinstance(value, dict):
        settings.problems.append("setting 'agent' should be an object with 'url' and 'token'")
        return
    url, token = value.get("url"), value.get("token")
    if url is not None:
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            settings.agent_url = url
        else:
            settings.problems.append(f"agent setting 'url' should be an http(s) URL, got {url!r}")
    if token is not None:
        if isinstance(token, str):
            settings.agent_token = token
        else:
            settings.problems.append("agent setting 'token' should be a string")


def _redact(settings: Settings, value: Any) -> None:
    """``redact: {enabled: bool, patterns: [regex | {name, pattern}]}``; bad patterns are
    reported and skipped, the well-known ones stay."""
    if not isinstance(value, dict):
        settings.problems.append("setting 'redact' should be an object; using defaults")
        return
    enabled = value.get("enabled", True)
    if isinstance(enabled, bool):
        settings.redact_enabled = enabled
    else:
        settings.problems.append(f"redact setting 'enabled' should be a boolean, got {enabled!r}")
    patterns = value.get("patterns", [])
    if not isinstance(patterns, list):
        settings.problems.append("redact setting 'patterns' should be a list; ignored")
        return
    for i, item in enumerate(patterns):
        if isinstance(item, str):
            name, pattern = f"pattern-{i + 1}", item
        elif (
            isinstance(item, dict)
            and isinstance(item.get("pattern"), str)
            and isinstance(item.get("name", ""), str)
        ):
            name, pattern = item.get("name") or f"pattern-{i + 1}", item["pattern"]
        else:
            settings.problems.append(
                f"redact pattern {i + 1} should be a regex or {{name, pattern}}; ignored"
            )
            continue
        try:
            compile_rule(name, pattern)
        except PatternError as exc:
            settings.problems.append(f"{exc}; ignored")
            continue
        settings.redact_patterns.append((name, pattern))
