"""Webhooks through the public surface: REST routes, the real Dispatcher and worker, a receiver over real
HTTP, signatures checked with the `standardwebhooks` package (docs/subsystems/notifications-channels.md)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from parlour.common.bus import ParkedMessage
from parlour.notifications.domain.delivery import Address
from tests.channels import Answer, Receiver, channels_parlour, make_certificate_authority, notification_for
from tests.clients import assert_problem, new_account
from tests.waiting import eventually


async def test_a_webhook_gets_the_notification_signed_the_standard_webhooks_way(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    async with Receiver().running() as receiver, channels_parlour(monkeypatch, tmp_path, database_url) as parlour:
        ada = await new_account(parlour.http, "ada")
        created = await parlour.http.post(
            "/api/notifications/webhooks", json={"url": f"{receiver.url}/hook"}, headers=ada.headers
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["secret"].startswith("whsec_")
        assert hook["enabled"] is True

        notification = notification_for(ada.user_id, last_seq=3, count=3)
        await parlour.dispatch(notification)
        request = await receiver.next()

        assert request.path == "/hook"
        assert request.headers["webhook-id"] == notification.id
        payload = Webhook(hook["secret"]).verify(request.body, request.headers)
        assert payload["type"] == "notification"
        assert payload["data"]["id"] == notification.id
        assert payload["data"]["count"] == 3
        assert payload["data"]["url"] == f"/#/chat/{notification.chat_id}"

        async def delivered() -> dict[str, object] | None:
            listed = (await parlour.http.get("/api/notifications/webhooks", headers=ada.headers)).json()["webhooks"]
            return listed[0] if listed[0]["last_status"] == 200 else None

        shown = await eventually(delivered, what="the webhook's last status")
        assert "secret" not in shown
        assert shown["failing_since"] is None

        await parlour.dispatch(notification)  # the same notification again (a redelivery): nothing new
        newer = notification_for(ada.user_id, last_seq=4)
        await parlour.dispatch(newer)
        assert (await receiver.next()).headers["webhook-id"] == newer.id


async def test_a_webhook_to_127_0_0_1_is_refused_unless_private_targets_are_allowed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    async with channels_parlour(
        monkeypatch, tmp_path, database_url, notifications_allow_private_targets=False
    ) as parlour:
        ada = await new_account(parlour.http, "ada")
        for url in ("https://127.0.0.1/hook", "https://localhost:8443/hook", "https://[::1]/x", "https://10.1.2.3/"):
            response = await parlour.http.post("/api/notifications/webhooks", json={"url": url}, headers=ada.headers)
            assert_problem(response, 422, "notification_target_refused")
        plain = await parlour.http.post(
            "/api/notifications/webhooks", json={"url": "http://example.com/hook"}, headers=ada.headers
        )
        assert_problem(plain, 422, "notification_target_refused")
        listed = await parlour.http.get("/api/notifications/webhooks", headers=ada.headers)
        assert listed.json() == {"webhooks": []}


async def test_a_name_that_resolves_to_a_private_address_at_delivery_time_is_refused_and_parked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    """DNS rebinding: public when the webhook was added, loopback when it is delivered to. The resolver is the
    test's (no DNS server of ours); the check and the connection are Parlour's."""
    answers: dict[str, list[Address]] = {"hooks.example.com": [ipaddress.ip_address("93.184.216.34")]}

    async def resolver(host: str, port: int) -> list[Address]:
        return answers[host]

    async with channels_parlour(
        monkeypatch,
        tmp_path,
        database_url,
        resolver=resolver,
        notifications_allow_private_targets=False,
    ) as parlour:
        ada = await new_account(parlour.http, "ada")
        created = await parlour.http.post(
            "/api/notifications/webhooks", json={"url": "https://hooks.example.com/h"}, headers=ada.headers
        )
        assert created.status_code == 201, created.text
        answers["hooks.example.com"] = [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("127.0.0.1")]
        await parlour.dispatch(notification_for(ada.user_id))

        async def parked() -> list[ParkedMessage]:
            return [p for p in await parlour.bus.parked() if p.message.type == "notifications.delivery_parked"]

        (entry,) = await eventually(parked, what="the refused delivery in the parking lot")
        assert "loopback address (127.0.0.1)" in entry.error
        assert "after 1 attempt(s)" in entry.error, "refused at once, not retried"


async def test_a_failing_webhook_is_retried_with_the_same_id_and_the_list_shows_it_failing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    script = [Answer(503, {"Retry-After": "1"}), Answer(500)]
    async with Receiver(script).running() as receiver, channels_parlour(monkeypatch, tmp_path, database_url) as parlour:
        ada = await new_account(parlour.http, "ada")
        hook = (
            await parlour.http.post(
                "/api/notifications/webhooks", json={"url": f"{receiver.url}/hook"}, headers=ada.headers
            )
        ).json()
        notification = notification_for(ada.user_id)
        await parlour.dispatch(notification)
        first, second, third = await receiver.next(), await receiver.next(), await receiver.next()
        assert {r.headers["webhook-id"] for r in (first, second, third)} == {notification.id}
        assert second.at - first.at >= 1.0, "Retry-After: 1 was honoured"
        for request in (first, second, third):
            Webhook(hook["secret"]).verify(request.body, request.headers)

        async def recovered() -> dict[str, object] | None:
            listed = (await parlour.http.get("/api/notifications/webhooks", headers=ada.headers)).json()["webhooks"]
            return listed[0] if listed[0]["last_status"] == 200 else None

        await eventually(recovered, what="the webhook's recovery")


async def test_another_users_webhook_is_not_found_and_a_deleted_one_gets_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    async with Receiver().running() as receiver, channels_parlour(monkeypatch, tmp_path, database_url) as parlour:
        ada, bob = await new_account(parlour.http, "ada"), await new_account(parlour.http, "bob")
        hook = (
            await parlour.http.post(
                "/api/notifications/webhooks", json={"url": f"{receiver.url}/hook"}, headers=ada.headers
            )
        ).json()
        theirs = await parlour.http.delete(f"/api/notifications/webhooks/{hook['id']}", headers=bob.headers)
        assert_problem(theirs, 404, "webhook_not_found")
        mine = await parlour.http.delete(f"/api/notifications/webhooks/{hook['id']}", headers=ada.headers)
        assert mine.status_code == 204
        again = await parlour.http.delete(f"/api/notifications/webhooks/{hook['id']}", headers=ada.headers)
        assert_problem(again, 404, "webhook_not_found")
        too_long = await parlour.http.post(
            "/api/notifications/webhooks", json={"url": "https://example.com/" + "a" * 2100}, headers=ada.headers
        )
        assert_problem(too_long, 422, "invalid_input")
        assert receiver.requests.empty()


async def test_a_delivery_that_never_succeeds_is_parked_with_its_reason_and_a_replay_delivers_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    script = [Answer(500), Answer(502), Answer(503)]
    async with (
        Receiver(script).running() as receiver,
        channels_parlour(monkeypatch, tmp_path, database_url, notifications_delivery_attempts=3) as parlour,
    ):
        ada = await new_account(parlour.http, "ada")
        hook = (
            await parlour.http.post(
                "/api/notifications/webhooks", json={"url": f"{receiver.url}/hook"}, headers=ada.headers
            )
        ).json()
        notification = notification_for(ada.user_id)
        await parlour.dispatch(notification)
        for _ in range(3):
            assert (await receiver.next()).headers["webhook-id"] == notification.id

        async def parked() -> list[ParkedMessage]:
            return [p for p in await parlour.bus.parked() if p.message.type == "notifications.delivery_parked"]

        (entry,) = await eventually(parked, what="the delivery in the parking lot")
        assert "HTTP 503" in entry.error
        assert f"webhook {hook['id']}" in entry.error
        assert "after 3 attempt(s)" in entry.error

        assert await parlour.bus.replay([entry.message.message_id]) == 1
        replayed = await receiver.next()
        assert replayed.headers["webhook-id"] == notification.id
        Webhook(hook["secret"]).verify(replayed.body, replayed.headers)
        assert await parked() == []


async def test_a_webhook_failing_for_longer_than_the_setting_is_disabled_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    script = [Answer(500)] * 50
    async with (
        Receiver(script).running() as receiver,
        channels_parlour(
            monkeypatch,
            tmp_path,
            database_url,
            notifications_delivery_attempts=50,
            notifications_retry_max_seconds=0.3,
            notifications_webhook_disable_after_seconds=1.0,
        ) as parlour,
    ):
        ada = await new_account(parlour.http, "ada")
        await parlour.http.post(
            "/api/notifications/webhooks", json={"url": f"{receiver.url}/hook"}, headers=ada.headers
        )
        await parlour.dispatch(notification_for(ada.user_id))
        first = await receiver.next()

        async def disabled() -> dict[str, object] | None:
            listed = (await parlour.http.get("/api/notifications/webhooks", headers=ada.headers)).json()["webhooks"]
            return listed[0] if not listed[0]["enabled"] else None

        shown = await eventually(disabled, what="the webhook disabled")
        assert shown["last_status"] == 500
        assert shown["failing_since"] is not None
        assert "Every delivery failed for 1 s" in str(shown["disabled_reason"])
        assert "HTTP 500" in str(shown["disabled_reason"])
        assert first.headers["webhook-id"]


async def test_an_https_webhook_is_reached_at_the_checked_address_with_the_name_in_host_and_tls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    """The name resolves (the test's resolver) to the receiver's 127.0.0.1; the certificate is for the name
    only, so the delivery succeeds only if the connection to the address checks the name (SNI and the
    certificate); one named differently on the same address fails its TLS check."""
    tls = make_certificate_authority(tmp_path, ["hooks.parlour.test"])
    loopback: list[Address] = [ipaddress.ip_address("127.0.0.1")]

    async def resolver(host: str, port: int) -> list[Address]:
        return loopback

    async with (
        Receiver().running(tls) as receiver,
        channels_parlour(monkeypatch, tmp_path, database_url, resolver=resolver, verify=tls.client) as parlour,
    ):
        ada, bob = await new_account(parlour.http, "ada"), await new_account(parlour.http, "bob")
        url = f"https://hooks.parlour.test:{receiver.port}/h"
        hook = (await parlour.http.post("/api/notifications/webhooks", json={"url": url}, headers=ada.headers)).json()
        notification = notification_for(ada.user_id)
        await parlour.dispatch(notification)
        request = await receiver.next()
        assert request.headers["host"] == f"hooks.parlour.test:{receiver.port}"
        Webhook(hook["secret"]).verify(request.body, request.headers)

        wrong = f"https://other.parlour.test:{receiver.port}/h"
        await parlour.http.post("/api/notifications/webhooks", json={"url": wrong}, headers=bob.headers)
        await parlour.dispatch(notification_for(bob.user_id))

        async def failing() -> dict[str, object] | None:
            listed = (await parlour.http.get("/api/notifications/webhooks", headers=bob.headers)).json()["webhooks"]
            return listed[0] if listed[0]["failing_since"] is not None else None

        shown = await eventually(failing, what="the TLS failure recorded")
        assert shown["last_status"] is None
        assert receiver.requests.empty(), "nothing reached the receiver under the wrong name"
