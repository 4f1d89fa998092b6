"""The pure delivery rules of the notification channels: outcomes, backoff, Retry-After, signatures, targets."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from parlour.notifications.domain.channel_errors import TargetRefused
from parlour.notifications.domain.delivery import (
    ChannelKind,
    Outcome,
    RetrySchedule,
    TargetPolicy,
    classify,
    parse_retry_after,
    refused_because,
    sign_webhook,
    webhook_secret,
)

PUBLIC = TargetPolicy(allow_private=False)
PRIVATE_ALLOWED = TargetPolicy(allow_private=True)


@pytest.mark.parametrize(
    ("kind", "status", "outcome"),
    [
        (ChannelKind.PUSH, 201, Outcome.DELIVERED),
        (ChannelKind.WEBHOOK, 200, Outcome.DELIVERED),
        (ChannelKind.WEBHOOK, 204, Outcome.DELIVERED),
        (ChannelKind.PUSH, 404, Outcome.GONE),
        (ChannelKind.PUSH, 410, Outcome.GONE),
        (ChannelKind.WEBHOOK, 410, Outcome.FAILED),
        (ChannelKind.WEBHOOK, 404, Outcome.FAILED),
        (ChannelKind.PUSH, 429, Outcome.RETRY),
        (ChannelKind.PUSH, 408, Outcome.RETRY),
        (ChannelKind.WEBHOOK, 500, Outcome.RETRY),
        (ChannelKind.PUSH, 503, Outcome.RETRY),
        (ChannelKind.PUSH, None, Outcome.RETRY),
        (ChannelKind.PUSH, 400, Outcome.FAILED),
        (ChannelKind.PUSH, 413, Outcome.FAILED),
        (ChannelKind.WEBHOOK, 301, Outcome.FAILED),
    ],
)
def test_an_answer_is_classified_by_channel_kind_and_status(
    kind: ChannelKind, status: int | None, outcome: Outcome
) -> None:
    assert classify(kind, status) is outcome


def test_the_backoff_doubles_with_jitter_within_half_and_whole_step_and_stops_at_the_cap() -> None:
    schedule = RetrySchedule(attempts=8, base=2.0, cap=10.0)
    assert schedule.delay(1, 0.0) == 1.0
    assert schedule.delay(1, 0.999) == pytest.approx(2.0, abs=0.01)
    assert schedule.delay(2, 0.0) == 2.0
    assert schedule.delay(3, 0.5) == 6.0
    assert schedule.delay(9, 1.0) == 10.0  # the cap


@given(attempts=st.integers(1, 60), jitter=st.floats(0, 1, exclude_max=True))
def test_the_backoff_stays_between_half_the_step_and_the_step(attempts: int, jitter: float) -> None:
    schedule = RetrySchedule(attempts=60, base=0.5, cap=600.0)
    step = min(600.0, 0.5 * 2.0 ** (attempts - 1))
    assert step / 2 <= schedule.delay(attempts, jitter) <= step


def test_retry_after_is_honoured_when_longer_than_the_backoff_and_capped_at_a_day() -> None:
    schedule = RetrySchedule(attempts=8, base=1.0, cap=60.0)
    assert schedule.delay(1, 0.0, retry_after=30.0) == 30.0
    assert schedule.delay(1, 0.0, retry_after=0.1) == 0.5  # a shorter one does not shorten the backoff
    assert schedule.delay(1, 0.0, retry_after=10 * 86400.0) == 86400.0


def test_the_schedule_gives_up_after_its_attempts_and_refuses_nonsense() -> None:
    schedule = RetrySchedule(attempts=3)
    assert [schedule.gives_up(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    with pytest.raises(ValueError, match="attempts"):
        RetrySchedule(attempts=0)
    with pytest.raises(ValueError, match="attempts"):
        RetrySchedule(base=10.0, cap=1.0)


def test_retry_after_reads_seconds_and_http_dates_and_ignores_the_rest() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 7 ", now) == 7.0
    later = format_datetime(datetime.fromtimestamp(now + 90, UTC), usegmt=True)
    assert parse_retry_after(later, now) == pytest.approx(90.0)
    earlier = format_datetime(datetime.fromtimestamp(now - 90, UTC), usegmt=True)
    assert parse_retry_after(earlier, now) == 0.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-5", now) is None


@given(
    message_id=st.text(min_size=1, max_size=80),
    body=st.text(max_size=500),
    key=st.binary(min_size=16, max_size=64),
    timestamp=st.integers(0, 4_000_000_000),
)
def test_the_webhook_signature_is_the_one_standard_webhooks_computes(
    message_id: str, body: str, key: bytes, timestamp: int
) -> None:
    secret = webhook_secret(key)
    expected = Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)
    assert sign_webhook(secret, message_id, timestamp, body.encode()) == expected


def test_a_webhook_secret_is_prefixed_and_carries_the_key() -> None:
    secret = webhook_secret(b"\x01" * 24)
    assert secret.startswith("whsec_")
    assert Webhook(secret).sign("x", datetime.fromtimestamp(0, UTC), "b") == sign_webhook(secret, "x", 0, b"b")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("fc00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not one to bind
        ("::", "unspecified"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_addresses_are_refused_for_what_they_are(address: str, reason: str | None) -> None:
    assert refused_because(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "ftp://example.com/hook",
        "https://user:pass@example.com/hook",
        "https:///nohost",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "https://example.com/#frag",
        "https://127.0.0.1/",
        "https://[::1]:8443/",
        "https://10.0.0.7/",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_urls_that_are_not_public_https_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        PUBLIC.check_url(url)


def test_private_targets_when_allowed_take_http_and_loopback_but_still_no_credentials() -> None:
    target = PRIVATE_ALLOWED.check_url("http://127.0.0.1:8080/hook?x=1")
    assert (target.scheme, target.host, target.port, target.path) == ("http", "127.0.0.1", 8080, "/hook?x=1")
    assert PRIVATE_ALLOWED.check_addresses([ipaddress.ip_address("127.0.0.1")]) == ipaddress.ip_address("127.0.0.1")
    with pytest.raises(TargetRefused):
        PRIVATE_ALLOWED.check_url("http://a:b@127.0.0.1/")
    with pytest.raises(TargetRefused):
        PRIVATE_ALLOWED.check_url("gopher://127.0.0.1/")


def test_a_name_is_refused_if_any_of_its_addresses_is() -> None:
    public, private = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.1")
    assert PUBLIC.check_addresses([public]) == public
    with pytest.raises(TargetRefused, match="private"):
        PUBLIC.check_addresses([public, private])
    with pytest.raises(TargetRefused, match="does not resolve"):
        PUBLIC.check_addresses([])


def test_the_checked_address_is_connected_to_with_the_name_in_host_and_the_origin_as_audience() -> None:
    target = PUBLIC.check_url("https://Push.Example.com/send/abc?x=1")
    assert target.url_to(ipaddress.ip_address("93.184.216.34")) == "https://93.184.216.34:443/send/abc?x=1"
    assert target.url_to(ipaddress.ip_address("2606:4700::1")) == "https://[2606:4700::1]:443/send/abc?x=1"
    assert target.host_header == "push.example.com"
    assert target.origin == "https://push.example.com"
    on_port = PUBLIC.check_url("https://push.example.com:8443/x")
    assert on_port.host_header == "push.example.com:8443"
    assert on_port.origin == "https://push.example.com:8443"
