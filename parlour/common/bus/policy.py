"""The failure rules every bus implementation applies: when to retry, how long to wait, when to park.

A handler failure counts as one attempt. After attempt `n` fails, the message waits
`base_delay * 2 ** (n - 1)` seconds and is delivered again, until `max_attempts` attempts have failed;
then it is parked with its error and attempt count. A message that can never succeed (`MalformedMessage`,
or a msgspec decoding error raised by the handler) is parked after its first attempt. A message that
failed because a dependency is away (`is_outage`: the database restarting, the key-value store down) is
never parked: it keeps waiting the longest delay between attempts until the dependency is back.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from parlour.common.bus.port import MalformedMessage
from parlour.common.errors import Unavailable

# Error texts travel in AMQP headers and in logs: long tracebacks stay in the log, not in the message.
_MAX_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff."""

    max_attempts: int = 5
    base_delay: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay <= 0:
            raise ValueError("base_delay must be positive")

    def gives_up(self, error: BaseException, attempts: int) -> bool:
        """Whether a message whose attempt number `attempts` failed with `error` is to be parked.

        Never for an outage (a dependency down or restarting, `is_outage`): the message is not at fault and
        will succeed once the dependency is back, so it waits at the longest delay, however long that takes
        (parking it would lose a user's message to a database restart)."""
        if is_malformed(error):
            return True
        if is_outage(error) and self.max_attempts > 1:
            return False
        return attempts >= self.max_attempts

    def delay(self, attempts: int) -> float:
        """Seconds to wait after failed attempt number `attempts` (1-based) before the next one; past the
        last retry (an outage keeps retrying) the longest delay again."""
        return self.base_delay * float(2 ** (min(attempts, self.max_attempts - 1) - 1))

    def delay_ms(self, attempts: int) -> int:
        """`delay` in whole milliseconds (at least 1), as AMQP expirations are written."""
        return max(1, round(self.delay(attempts) * 1000))

    def delays_ms(self) -> tuple[int, ...]:
        """Every distinct delay a message can wait, in milliseconds (one RabbitMQ retry queue each)."""
        return tuple(self.delay_ms(attempt) for attempt in range(1, self.max_attempts))


# The policy of a bus built without one: five attempts, waiting 0.2, 0.4, 0.8 and 1.6 s between them.
DEFAULT_RETRY = RetryPolicy()


def is_malformed(error: BaseException) -> bool:
    """A message that failed this way will fail every time: retrying it is pointless."""
    return isinstance(error, MalformedMessage | msgspec.DecodeError)


# SQLSTATE classes of a database that is away: 08 connection exception, 57P admin / crash shutdown,
# cannot connect now (starting up, recovering).
_OUTAGE_SQLSTATES = ("08", "57P")


def is_outage(error: BaseException) -> bool:
    """`error` says a dependency (database, broker, key-value store, another service) is down or restarting,
    not that the message is wrong: `Unavailable`, a connection or timeout error, a database connection
    invalidated or refused, anywhere in the chain of explicit causes (`raise … from …`)."""
    current: BaseException | None = error
    for _ in range(8):  # a chain is short; never loop on a cycle
        if current is None:
            return False
        if isinstance(current, Unavailable | ConnectionError | TimeoutError):
            return True
        if getattr(current, "connection_invalidated", False):  # SQLAlchemy: the connection was lost
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_OUTAGE_SQLSTATES):
            return True
        current = current.__cause__ or getattr(current, "orig", None)
    return False


def error_summary(error: BaseException) -> str:
    """A short, single-line description of `error` for park headers and logs."""
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    return text[:_MAX_ERROR_CHARS]
