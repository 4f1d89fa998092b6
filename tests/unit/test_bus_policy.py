"""The retry policy shared by both bus implementations, and the AMQP header codec's pure parts."""

from __future__ import annotations

import msgspec
import pytest

from parlour.common.bus.amqp.bus import _fanout_chunks
from parlour.common.bus.amqp.codec import user_headers
from parlour.common.bus.policy import RetryPolicy, error_summary, is_malformed, is_outage
from parlour.common.bus.port import MalformedMessage
from parlour.common.errors import Unavailable


def test_backoff_doubles_from_the_base_delay() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=0.2)
    assert [policy.delay(attempt) for attempt in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.6]
    assert policy.delays_ms() == (200, 400, 800, 1600)


def test_a_message_is_parked_after_the_last_attempt_or_at_once_when_malformed() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.1)
    assert not policy.gives_up(RuntimeError(), 2)
    assert policy.gives_up(RuntimeError(), 3)
    assert policy.gives_up(MalformedMessage(), 1)
    assert policy.gives_up(msgspec.ValidationError("bad"), 1)


class _AsyncpgError(Exception):
    sqlstate = "57P03"  # cannot connect now: the database is starting up or recovering


def _caused_by(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("wrapped") from cause
    except RuntimeError as error:
        return error


@pytest.mark.parametrize(
    "outage",
    [
        Unavailable("Redis is unavailable"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        _caused_by(_AsyncpgError("the database system is not yet accepting connections")),
        _caused_by(ConnectionResetError()),
    ],
)
def test_a_message_failing_because_a_dependency_is_away_is_never_parked(outage: BaseException) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.1)
    assert is_outage(outage)
    assert not any(policy.gives_up(outage, attempts) for attempts in range(1, 100))
    assert [policy.delay(attempts) for attempts in (1, 2, 3, 50)] == [0.1, 0.2, 0.2, 0.2]  # a queue for each
    assert {policy.delay_ms(attempts) for attempts in range(1, 100)} == set(policy.delays_ms())


def test_a_bug_is_no_outage_and_is_parked_after_the_last_attempt() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.1)
    assert not is_outage(ValueError("a bug"))
    assert not is_outage(_caused_by(KeyError("x")))
    assert policy.gives_up(ValueError("a bug"), 3)
    assert RetryPolicy(max_attempts=1).gives_up(Unavailable(), 1)  # no retry at all: nothing to wait in


def test_malformed_means_it_can_never_succeed() -> None:
    assert is_malformed(msgspec.DecodeError("x"))
    assert not is_malformed(ValueError("x"))


def test_an_error_description_is_one_short_line() -> None:
    text = error_summary(RuntimeError("line one\nline two" + "x" * 5000))
    assert text.startswith("RuntimeError: line one line two")
    assert "\n" not in text
    assert len(text) <= 1000


def test_a_policy_needs_at_least_one_attempt_and_a_positive_delay() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="base_delay"):
        RetryPolicy(base_delay=0)


def test_the_bus_and_broker_headers_are_not_the_messages_own() -> None:
    headers = {
        "traceparent": "00-abc-def-01",
        "x-parlour-attempts": 2,
        "parlour-retry-delay": "200",
        "x-death": [],
        "x-first-death-queue": "q",
        "CC": ["user.2"],
        "bytes": b"v",
    }
    assert user_headers(headers) == {"traceparent": "00-abc-def-01", "bytes": "v"}


def test_a_large_fanout_is_split_to_fit_one_frame_and_keys_are_unique() -> None:
    assert _fanout_chunks(["user.1", "user.2", "user.1"]) == [["user.1", "user.2"]]
    keys = [f"user.{n:032x}" for n in range(5000)]
    chunks = _fanout_chunks(keys)
    assert len(chunks) > 1
    assert [key for chunk in chunks for key in chunk] == keys
    assert all(sum(len(key) + 8 for key in chunk) <= 60_000 for chunk in chunks)
    assert _fanout_chunks([]) == []
