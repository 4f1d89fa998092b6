"""Topic matching of the in-memory bus, which must agree with RabbitMQ's topic exchange."""

from __future__ import annotations

import pytest

from parlour.common.bus.topic import is_pattern, matches


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("user.42", "user.42", True),
        ("user.42", "user.43", False),
        ("user.*", "user.42", True),
        ("user.*", "user", False),
        ("user.*", "user.42.x", False),
        ("*.new", "message.new", True),
        ("*", "", True),
        ("chat.#", "chat", True),
        ("chat.#", "chat.1", True),
        ("chat.#", "chat.1.typing", True),
        ("chat.#", "chats.1", False),
        ("#", "anything.at.all", True),
        ("#", "", True),
        ("#.typing", "typing", True),
        ("#.typing", "chat.1.typing", True),
        ("#.typing", "chat.1.typing.x", False),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.#.z", "a.b.c", False),
        ("a.*.#", "a", False),
        ("a.*.#", "a.b", True),
        ("#.#", "a.b", True),
        ("a*b.c", "a*b.c", True),
        ("a*b.c", "axb.c", False),
    ],
)
def test_a_pattern_matches_keys_as_an_amqp_topic_exchange_does(pattern: str, key: str, expected: bool) -> None:
    assert matches(pattern, key) is expected


def test_only_whole_words_are_wildcards() -> None:
    assert is_pattern("user.*")
    assert is_pattern("#")
    assert not is_pattern("user.a*")
    assert not is_pattern("user.42")


def test_many_hashes_do_not_blow_up() -> None:
    assert not matches(".".join(["#"] * 30) + ".z", ".".join(["a"] * 60))
