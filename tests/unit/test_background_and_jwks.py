"""Two small pieces every process leans on: supervised background tasks, and fetching auth's public keys."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from parlour.common.bus.background import TaskSet
from parlour.common.errors import Unavailable
from parlour.common.tokens import HttpJwksSource

JWKS_URL = "http://auth.test/auth/.well-known/jwks.json"


async def test_a_background_task_that_fails_is_logged_at_error_not_lost(capsys: pytest.CaptureFixture[str]) -> None:
    tasks = TaskSet()

    async def broken() -> None:
        raise RuntimeError("consumer loop broke")

    task = tasks.spawn(broken(), name="consumer")
    await asyncio.wait({task})  # returns after the set's own done callback ran: it was registered first
    out = capsys.readouterr().out
    assert "bus.task_failed" in out
    assert "consumer loop broke" in out
    assert len(tasks) == 0


async def test_waiting_for_background_tasks_says_whether_they_all_ended() -> None:
    tasks = TaskSet()
    assert await tasks.wait(at_most=0)  # nothing to wait for
    release = asyncio.Event()
    tasks.spawn(release.wait(), name="held")
    assert not await tasks.wait(at_most=0.01)
    release.set()
    assert await tasks.wait(at_most=5)


async def test_cancel_all_ends_every_task_and_a_cancelled_task_is_not_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tasks = TaskSet()
    for name in ("a", "b"):
        tasks.spawn(asyncio.Event().wait(), name=name)
    await tasks.cancel_all()
    assert len(tasks) == 0
    assert "bus.task_failed" not in capsys.readouterr().out


def _source(handler: httpx.MockTransport) -> HttpJwksSource:
    return HttpJwksSource(httpx.AsyncClient(transport=handler), JWKS_URL)


async def test_the_jwks_is_fetched_from_the_auth_service() -> None:
    document = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "AAAA"}]}
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=document)

    assert await _source(httpx.MockTransport(handle)).fetch() == document
    assert seen == [JWKS_URL]


@pytest.mark.parametrize(
    "answer",
    [
        lambda request: httpx.Response(503, json={"code": "unavailable"}),
        lambda request: httpx.Response(404),
    ],
    ids=["auth down", "wrong url"],
)
async def test_an_auth_service_that_answers_with_an_error_makes_the_keys_unavailable(
    answer: Callable[[httpx.Request], httpx.Response],
) -> None:
    with pytest.raises(Unavailable, match="public keys"):
        await _source(httpx.MockTransport(answer)).fetch()


async def test_an_auth_service_that_cannot_be_reached_makes_the_keys_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Unavailable, match="public keys"):
        await _source(httpx.MockTransport(refuse)).fetch()
