"""`parse_since`: the times people type for "since"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ktl_lsp.sessions.timespec import parse_since

ZONE = timezone(timedelta(hours=2))
NOW = datetime(2026, 11, 26, 12, 30, 15, 250000, tzinfo=ZONE)


def ns(moment: datetime) -> int:
    return round(moment.timestamp() * 1e6) * 1000


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        ("45s", timedelta(seconds=45)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        (" 2H ", timedelta(hours=2)),
        ("0m", timedelta(0)),
    ],
)
def test_durations_are_that_long_ago(text: str, ago: timedelta) -> None:
    assert parse_since(text, NOW) == ns(NOW - ago)


@given(st.integers(min_value=0, max_value=10**7))
def test_any_number_of_seconds(seconds: int) -> None:
    assert parse_since(f"{seconds}s", NOW) == ns(NOW) - seconds * 10**9


def test_today_and_yesterday_start_at_midnight_in_nows_zone() -> None:
    assert parse_since("today", NOW) == ns(datetime(2026, 11, 26, tzinfo=ZONE))
    assert parse_since("Yesterday", NOW) == ns(datetime(2026, 11, 25, tzinfo=ZONE))


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=ZONE)),
        ("2026-11-20T10:00", datetime(2026, 11, 20, 10, tzinfo=ZONE)),
        ("2026-11-20 10:00:30", datetime(2026, 11, 20, 10, 0, 30, tzinfo=ZONE)),
        ("2026-11-20T10:00:00Z", datetime(2026, 11, 20, 10, tzinfo=UTC)),
        (
            "2026-11-20T10:00:00-05:00",
            datetime(2026, 11, 20, 10, tzinfo=timezone(timedelta(hours=-5))),
        ),
    ],
)
def test_iso_dates_and_times(text: str, moment: datetime) -> None:
    assert parse_since(text, NOW) == ns(moment)


def test_a_naive_now_means_local_time() -> None:
    local = datetime(2026, 11, 20, 10, 0)
    assert parse_since("2026-11-20T10:00", datetime.now()) == ns(local.astimezone())
    assert parse_since("today", datetime(2026, 11, 26, 12)) == ns(
        datetime(2026, 11, 26).astimezone()
    )


@pytest.mark.parametrize(
    "text", ["", "last tuesday", "3 days", "-3d", "5x", "2h ago", "10:00", "99999999999w"]
)
def test_anything_else_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_since(text, NOW)
    message = str(raised.value)
    assert message.startswith(f"cannot read {text!r} as a time: use ")
    for example in ("30m", "2h", "3d", "1w", "yesterday", "2026-11-26", "2026-11-26T10:00"):
        assert example in message
