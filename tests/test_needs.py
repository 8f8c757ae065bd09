"""The one place that decides whether a missing tool fails the run (CI) or skips a test."""

from __future__ import annotations

import pytest

from tests.needs import in_ci, unavailable


@pytest.mark.parametrize(
    ("value", "ci"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("TRUE", True),
        ("woodpecker", True),
        ("", False),
        ("0", False),
        ("false", False),
        ("no", False),
    ],
)
def test_ci_spellings(monkeypatch: pytest.MonkeyPatch, value: str, ci: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_unset_is_not_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert in_ci() is False


def test_missing_tool_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="nvim not installed"):
        unavailable("nvim not installed")


def test_missing_tool_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="nvim not installed"):
        unavailable("nvim not installed")
