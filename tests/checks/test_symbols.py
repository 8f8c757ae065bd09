"""Workspace symbols' fuzzy matching (ktl_lsp/checks/symbols.py)."""

from __future__ import annotations

from ktl_lsp.checks.symbols import fuzzy_score


def test_fuzzy_score_prefers_whole_words_then_close_letters() -> None:
    assert fuzzy_score("web", "web") == 0 and fuzzy_score("web", "Deployment/web") == 0
    assert fuzzy_score("set", "web-settings") == 0  # a word of its own
    assert fuzzy_score("ett", "web-settings") == 1  # inside a word
    scattered = fuzzy_score("dplweb", "Deployment/web")
    assert scattered is not None and scattered > 1
    assert fuzzy_score("zzz", "web") is None and fuzzy_score("", "anything") == 0
