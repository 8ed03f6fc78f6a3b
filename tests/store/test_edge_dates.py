"""The first and last instants a date can name survive a round trip (PostgreSQL stores them as
-infinity and infinity, which the driver reads back without a time zone)."""

from __future__ import annotations

import pytest
from helpers import call, in_process_client, unique

pytestmark = pytest.mark.anyio


async def test_edge_dates_are_recalled_in_utc(pg_url: str) -> None:
    async with in_process_client(pg_url, unique("edges")) as client:
        first = await call(client, "retain", content="The oldest note.", occurred_at="0001-01-01")
        last = await call(client, "retain", content="The newest note.", occurred_at="9999-12-31T23:59:59.999999")
        await call(client, "retain", content="A note from an ordinary day.", occurred_at="2024-05-08")
        found = await call(client, "recall", query="note", max_results=10)
        when = {m["id"]: m["occurred_at"] for m in found["memories"]}
        assert when[first["memory_ids"][0]] == "0001-01-01T00:00:00+00:00"
        assert when[last["memory_ids"][0]] == "9999-12-31T23:59:59.999999+00:00"
        assert len(when) == 3
        windowed = await call(client, "recall", query="note", since="9999-01-01")
        assert [m["id"] for m in windowed["memories"]] == last["memory_ids"]
