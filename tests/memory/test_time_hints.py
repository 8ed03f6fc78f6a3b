"""Time hints: the days and months a query names, and which memories they match (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from mcp_server.memory.time_hints import TimeHint, time_hints


def test_time_hints() -> None:
    assert time_hints("What did she do on 8 May, 2023?") == [TimeHint(date(2023, 5, 8), date(2023, 5, 8))]
    assert time_hints("plans for October 13, 2023 and 2024-02-29") == [
        TimeHint(date(2023, 10, 13), date(2023, 10, 13)),
        TimeHint(date(2024, 2, 29), date(2024, 2, 29)),
    ]
    assert time_hints("What happened in December 2023?") == [TimeHint(date(2023, 12, 1), date(2023, 12, 31))]
    assert time_hints("When did he go camping in July?") == [TimeHint(month=7)]
    assert time_hints("Who may join us in 2022?") == [TimeHint(date(2022, 1, 1), date(2022, 12, 31))]
    assert time_hints("What may she march for?") == []
    # No such day: the month it names is still a hint.
    assert time_hints("on 31 February, 2023") == [TimeHint(date(2023, 2, 1), date(2023, 2, 28))]
    hint = TimeHint(date(2023, 5, 8), date(2023, 5, 8))
    assert hint.matches(datetime(2023, 5, 9, 1, tzinfo=UTC), timedelta(days=1))
    assert not hint.matches(datetime(2023, 5, 10, 1, tzinfo=UTC), timedelta(days=1))
