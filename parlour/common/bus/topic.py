"""AMQP topic matching, for the in-memory bus (RabbitMQ does the same on its topic exchange).

A routing key and a pattern are words separated by dots. In a pattern, `*` stands for exactly one word
and `#` for zero or more words; any other word must match exactly. So `user.*` matches `user.42` but not
`user` or `user.42.x`, and `chat.#` matches `chat`, `chat.1` and `chat.1.typing`.
"""

from __future__ import annotations

from functools import lru_cache


def is_pattern(key: str) -> bool:
    """Whether `key` contains a wildcard word (and so needs `matches` rather than equality)."""
    return any(word in ("*", "#") for word in key.split("."))


def matches(pattern: str, routing_key: str) -> bool:
    """Whether `routing_key` matches the topic `pattern`."""
    if not is_pattern(pattern):
        return pattern == routing_key
    return _matches(tuple(pattern.split(".")), tuple(routing_key.split(".")))


@lru_cache(maxsize=4096)
def _matches(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    # A small NFA over pattern positions: linear in len(pattern) * len(words), no backtracking blow-up.
    states = _closure(pattern, {0})
    for word in words:
        following: set[int] = set()
        for position in states:
            if position == len(pattern):
                continue
            token = pattern[position]
            if token == "#":
                following.add(position)
            elif token in ("*", word):
                following.add(position + 1)
        states = _closure(pattern, following)
        if not states:
            return False
    return len(pattern) in states


def _closure(pattern: tuple[str, ...], states: set[int]) -> set[int]:
    # `#` may match zero words: a position before `#` also stands after it.
    result = set(states)
    pending = list(states)
    while pending:
        position = pending.pop()
        if position < len(pattern) and pattern[position] == "#" and position + 1 not in result:
            result.add(position + 1)
            pending.append(position + 1)
    return result
