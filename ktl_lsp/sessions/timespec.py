"""The "since" times people type: ``30m``, ``2h``, ``3d``, ``1w`` ago, ``today``, ``yesterday``,
or an ISO date or time with or without a zone.

Free of pygls: ``ktl-lsp sessions list --since`` and the server's ``ktl.sessions.list`` share it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

ACCEPTED = (
    "a time ago such as 30m, 2h, 3d or 1w (units s, m, h, d, w; combined as in 1h30m), "
    "today, yesterday, or an ISO date or time such as 2026-11-26, 2026-11-26T10:00 or "
    "2026-11-26T10:00:00+02:00 (without a zone: local time)"
)

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_since(text: str, now: datetime) -> int:
    """The moment ``text`` names, in nanoseconds since the epoch.

    Times without a zone, ``today`` and ``yesterday`` are in ``now``'s zone; a naive ``now``
    stands for the local zone. Raises ValueError saying what is accepted.
    """
    spec = text.strip().lower()
    try:
        if _DURATION.fullmatch(spec):
            ago = sum(float(n) * _SECONDS[unit] for n, unit in _PART.findall(spec))
            moment = _aware(now, now) - timedelta(seconds=ago)
        elif spec in ("today", "yesterday"):
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            moment = _aware(midnight - timedelta(days=1 if spec == "yesterday" else 0), now)
        else:
            moment = _aware(datetime.fromisoformat(text.strip()), now)
        return (moment - _EPOCH) // timedelta(microseconds=1) * 1000
    except (ValueError, OverflowError):
        raise ValueError(f"cannot read {text!r} as a time: use {ACCEPTED}") from None


def _aware(moment: datetime, now: datetime) -> datetime:
    if moment.tzinfo is not None:
        return moment
    return moment.astimezone() if now.tzinfo is None else moment.replace(tzinfo=now.tzinfo)
