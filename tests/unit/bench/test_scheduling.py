"""How the bench splits clients and load across its worker processes, and tracks what a client has."""

from __future__ import annotations

from typing import Any, cast

from parlour.bench.scenarios.load import share
from parlour.bench.session import split
from parlour.bench.worker import Client, ClientSpec


def test_split_keeps_order_and_spreads_the_remainder() -> None:
    assert split(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split([1], 3) == [[1], [], []]


def test_a_total_rate_is_shared_by_senders() -> None:
    assert share(300.0, [1, 2, 0]) == [100.0, 200.0, 0.0]
    assert share(None, [1, 2]) == [None, None]


def test_the_resume_watermark_is_the_highest_seq_with_nothing_missing_below() -> None:
    client = Client(ClientSpec(0, "u", chats=["c"]), cast(Any, None))
    for seq in (1, 3, 4):
        client._advance("c", seq)
    assert client.watermarks["c"] == 1
    client._advance("c", 2)
    assert client.watermarks["c"] == 4
    client._advance("c", 2)
    assert client.watermarks["c"] == 4
