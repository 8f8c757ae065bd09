"""initializationOptions: every bad value is named once and its default kept; the rest apply."""

from __future__ import annotations

from ktl_lsp.lsp.settings import Settings


def test_good_values_apply() -> None:
    s = Settings.from_options(
        {
            "sessionData": True,
            "k8sVersion": "1.30",
            "retention": {"maxSessions": 10, "maxAgeDays": 1.5},
            "gateway": {"port": 8099},
            "agent": {"url": "https://agent.example:8443", "token": "t"},
            "redact": {"enabled": True, "patterns": ["T-\\d+"]},
            "someOtherTool": {"x": 1},
        }
    )
    assert s.problems == []
    assert s.session_data and s.k8s_version == "1.30"
    assert s.retention.max_sessions == 10 and s.retention.max_age_days == 1.5
    assert s.gateway.port == 8099 and s.gateway.host == "127.0.0.1"
    assert s.agent.url == "https://agent.example:8443"
    assert s.redact.rules() == [("pattern-1", "T-\\d+")] and s.redaction() is not None


def test_each_bad_value_is_reported_and_defaulted() -> None:
    s = Settings.from_options(
        {
            "logMessageLimit": -1,
            "retention": {"maxSessions": "ten", "maxFramesPerSession": 2.5, "typo": 1},
            "gateway": {"port": 70000, "enabled": "yes"},
            "agent": {"url": "ftp://host"},
            "redact": {"patterns": ["(", {"name": "t", "pattern": "T-\\d+"}, 7]},
        }
    )
    defaults = Settings()
    assert s.log_message_limit == defaults.log_message_limit
    assert s.retention == defaults.retention
    assert s.gateway == defaults.gateway
    assert s.agent.url is None
    assert s.redact.rules() == [("t", "T-\\d+")]  # the good pattern stays
    assert s.redact.enabled  # a redact section turns it on unless it says otherwise
    assert s.problems == [
        "setting 'logMessageLimit': must not be negative; using 4194304",
        "setting 'retention.maxSessions': expected integer, got string; using 5000",
        "setting 'retention.maxFramesPerSession': expected integer, got number; using 1000000",
        "unknown setting 'retention.typo'; ignored",
        "setting 'gateway.port': must be a port number (0-65535); using 0",
        "setting 'gateway.enabled': expected boolean, got string; using True",
        "setting 'agent.url': must be an http(s) URL; using None",
        "setting 'redact.patterns[0]': redact pattern 'pattern-1' is not a valid regex: "
        "missing ), unterminated subpattern at position 0; ignored",
        "setting 'redact.patterns[2]': expected string or object, got number; ignored",
    ]


def test_not_an_object() -> None:
    assert Settings.from_options(None).problems == []
    s = Settings.from_options([1])
    assert s == Settings(problems=s.problems)
    assert s.problems == ["initializationOptions should be an object; using defaults"]
    assert Settings.from_options({"gateway": 3}).problems == [
        "setting 'gateway' should be an object; using defaults"
    ]


def test_capability_switches() -> None:
    s = Settings.from_options({"hover": {"enabled": False}, "codeLens": {"enabled": False}})
    assert s.problems == []
    assert not s.answers("textDocument/hover") and not s.answers("codeLens/resolve")
    assert s.answers("textDocument/completion") and s.answers("textDocument/definition")
    assert s.answers("workspace/executeCommand")  # no switch: always answered
    off = s.changed({"definition": {"enabled": False}, "references": {"enabled": False}})
    assert not off.answers("textDocument/definition") and not off.answers("textDocument/references")
    assert not off.answers("textDocument/hover")  # left out: kept


def test_a_change_touches_the_switches_only() -> None:
    s = Settings.from_options({"k8sVersion": "1.30", "symbols": {"enabled": False}})
    changed = s.changed({"ktl": {"k8sVersion": "1.25", "symbols": {"enabled": True}, "x": 1}})
    assert changed.k8s_version == "1.30" and changed.symbols.enabled and changed.problems == []
    bad = s.changed({"diagnostics": {"enabled": 1, "typo": True}})
    assert bad.diagnostics.enabled and bad.problems == [
        "setting 'diagnostics.enabled': expected boolean, got number; using True",
        "unknown setting 'diagnostics.typo'; ignored",
    ]
    assert s.changed("nonsense") == Settings.from_options(
        {"k8sVersion": "1.30", "symbols": {"enabled": False}}
    )
