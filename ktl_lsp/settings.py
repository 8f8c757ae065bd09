"""Typed settings from ``initializationOptions``; a bad value is reported and its default kept."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Settings:
    #: Send raw terminal output as ``ktl/sessionData`` (editors that show a terminal opt in).
    session_data: bool = False
    #: Bytes of one session's output sent as logMessage lines before switching to summaries.
    log_message_limit: int = 4 * 1024 * 1024
    problems: list[str] = field(default_factory=list)

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
        }
        for key, value in options.items():
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
