"""Dates named in a query ("on 8 May, 2023", "in July 2022", "in 2021"), as hints for ranking.

A question about a day is most likely answered by what happened on that day, so recall gives
memories whose `occurred_at` (else `retained_at`) falls in a named period a bonus. This is a
hint, not the `since`/`until` filter: memories outside the period can still be returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d\d)"
DAY_MONTH_YEAR = re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE)
MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.IGNORECASE)
ISO_DATE = re.compile(r"\b((?:19|20)\d\d)-(\d{2})-(\d{2})\b")
MONTH_YEAR = re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE)
# A bare month or year only counts after a preposition: "may" and "march" are also verbs.
BARE_MONTH = re.compile(rf"\b(?:in|during|of|since|until|before|after|last|this)\s+{_MONTH}\b", re.IGNORECASE)
BARE_YEAR = re.compile(rf"\b(?:in|during|of|since|until|before|after)\s+{_YEAR}\b", re.IGNORECASE)


@dataclass(frozen=True)
class TimeHint:
    """A period named in a query: a span of days, or a month of any year (`month` set)."""

    start: date | None = None
    end: date | None = None
    month: int | None = None

    def matches(self, when: datetime, slack: timedelta = timedelta(0)) -> bool:
        """Whether `when` falls in the period, widened by `slack` on both sides."""
        if self.month is not None:
            return when.astimezone(UTC).month == self.month
        assert self.start is not None and self.end is not None
        day = when.astimezone(UTC).date()
        return self.start - slack <= day <= self.end + slack


def _day(year: str, month: int, day: str) -> TimeHint | None:
    try:
        found = date(int(year), month, int(day))
    except ValueError:
        return None
    return TimeHint(found, found)


def _month_span(year: int, month: int) -> TimeHint:
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return TimeHint(first, following - timedelta(days=1))


def time_hints(query: str) -> list[TimeHint]:
    """The periods `query` names, most precise kind only (days, else months, else years)."""
    days = [
        *(_day(m[3], MONTHS[m[2].lower()], m[1]) for m in DAY_MONTH_YEAR.finditer(query)),
        *(_day(m[3], MONTHS[m[1].lower()], m[2]) for m in MONTH_DAY_YEAR.finditer(query)),
        *(_day(m[1], int(m[2]), m[3]) for m in ISO_DATE.finditer(query) if 1 <= int(m[2]) <= 12),
    ]
    if found := [hint for hint in days if hint is not None]:
        return found
    if months := [_month_span(int(m[2]), MONTHS[m[1].lower()]) for m in MONTH_YEAR.finditer(query)]:
        return months
    if bare := [TimeHint(month=MONTHS[m[1].lower()]) for m in BARE_MONTH.finditer(query)]:
        return bare
    return [TimeHint(date(int(m[1]), 1, 1), date(int(m[1]), 12, 31)) for m in BARE_YEAR.finditer(query)]
