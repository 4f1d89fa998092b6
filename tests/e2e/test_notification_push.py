"""Web Push through the public surface: the REST routes, the real Dispatcher and worker, and push services
that are not Parlour's code: the npm package web-push-testing (it checks the VAPID token and decrypts),
and a receiver in the test that verifies the VAPID JWT and decrypts with `http_ece`. Real HTTP both ends.
docs/subsystems/notifications-channels.md maps its failure cases here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.channels import (
    A_503_THEN_201,
    Answer,
    BrowserKeys,
    Receiver,
    a_410_removes_the_subscription,
    a_503_then_201_is_retried_once_with_the_same_topic,
    b64url,
    channels_parlour,
    notification_for,
    web_push_testing,
)
from tests.clients import assert_problem, new_account
from tests.waiting import eventually


async def test_web_push_testing_receives_and_decrypts_the_notification_signed_with_the_published_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    async with web_push_testing(tmp_path) as service, channels_parlour(monkeypatch, tmp_path, database_url) as parlour:
        ada = await new_account(parlour.http, "ada")
        key = (await parlour.http.get("/api/notifications/vapid-key")).json()["public_key"]
        browser = await service.subscribe(key)
        created = await parlour.http.post(
            "/api/notifications/push-subscriptions", json=browser.as_json(), headers=ada.headers
        )
        assert created.status_code == 201, created.text

        notification = notification_for(ada.user_id, last_seq=7, count=3)
        await parlour.dispatch(notification)

        async def received() -> list[dict[str, Any]]:
            return await service.messages(browser)

        (message,) = await eventually(received, what="the push at web-push-testing")
        assert message["id"] == notification.id
        assert message["title"] == "Team"
        assert message["body"] == "3 new messages from Ada in Team"
        assert message["url"] == f"/#/chat/{notification.chat_id}"
        assert message["tag"] == notification.topic


async def test_a_410_from_the_push_service_removes_the_subscription(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    async with web_push_testing(tmp_path) as service, channels_parlour(monkeypatch, tmp_path, database_url) as parlour:
        await a_410_removes_the_subscription(parlour, service)


async def test_a_503_then_201_is_retried_after_retry_after_and_delivered_once_with_the_same_topic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    async with (
        Receiver(A_503_THEN_201).running() as push,
        channels_parlour(monkeypatch, tmp_path, database_url) as parlour,
    ):
        await a_503_then_201_is_retried_once_with_the_same_topic(parlour, push)


async def test_subscriptions_are_checked_re_owned_by_endpoint_and_private_to_their_user(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    async with channels_parlour(monkeypatch, tmp_path, database_url) as parlour:
        ada, bob = await new_account(parlour.http, "ada"), await new_account(parlour.http, "bob")
        browser = BrowserKeys()
        subscription = browser.subscription("http://127.0.0.1:9/push/shared-laptop")
        first = await parlour.http.post("/api/notifications/push-subscriptions", json=subscription, headers=ada.headers)
        assert first.status_code == 201, first.text
        again = await parlour.http.post("/api/notifications/push-subscriptions", json=subscription, headers=bob.headers)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first.json()["id"]
        ada_list = await parlour.http.get("/api/notifications/push-subscriptions", headers=ada.headers)
        assert ada_list.json() == {"subscriptions": []}

        theirs = await parlour.http.delete(
            f"/api/notifications/push-subscriptions/{first.json()['id']}", headers=ada.headers
        )
        assert_problem(theirs, 404, "push_subscription_not_found")

        not_a_point = {**subscription, "keys": {**subscription["keys"], "p256dh": "B" + "A" * 86}}
        bad = await parlour.http.post("/api/notifications/push-subscriptions", json=not_a_point, headers=ada.headers)
        assert_problem(bad, 422, "invalid_push_subscription")
        short_auth = {**subscription, "keys": {**subscription["keys"], "auth": "abc"}}
        bad = await parlour.http.post("/api/notifications/push-subscriptions", json=short_auth, headers=ada.headers)
        assert_problem(bad, 422, "invalid_input")
        huge = {**subscription, "endpoint": "https://push.example.com/" + "a" * 2100}
        bad = await parlour.http.post("/api/notifications/push-subscriptions", json=huge, headers=ada.headers)
        assert_problem(bad, 422, "invalid_input")
        unauthenticated = await parlour.http.get("/api/notifications/push-subscriptions")
        assert_problem(unauthenticated, 401, "invalid_token")

        mine = await parlour.http.delete(
            f"/api/notifications/push-subscriptions/{first.json()['id']}", headers=bob.headers
        )
        assert mine.status_code == 204


async def test_a_push_endpoint_on_a_private_address_is_refused_unless_allowed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    async with channels_parlour(
        monkeypatch, tmp_path, database_url, notifications_allow_private_targets=False
    ) as parlour:
        ada = await new_account(parlour.http, "ada")
        for endpoint in ("https://127.0.0.1/push/x", "https://169.254.169.254/latest", "http://push.example.com/x"):
            subscription = BrowserKeys().subscription(endpoint)
            refused = await parlour.http.post(
                "/api/notifications/push-subscriptions", json=subscription, headers=ada.headers
            )
            assert_problem(refused, 422, "notification_target_refused")


async def test_the_vapid_key_is_created_on_first_start_kept_across_restarts_or_taken_from_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    async with channels_parlour(monkeypatch, tmp_path, database_url) as first:
        created = (await first.http.get("/api/notifications/vapid-key")).json()["public_key"]
    key_file = tmp_path / "vapid" / "private.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    async with channels_parlour(monkeypatch, tmp_path, database_url) as again:
        assert (await again.http.get("/api/notifications/vapid-key")).json()["public_key"] == created
        documented = (await again.http.get("/openapi.json")).json()["paths"]
        for path in ("/api/notifications/vapid-key", "/api/notifications/push-subscriptions/{subscription_id}"):
            assert path in documented

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    point = private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    async with channels_parlour(monkeypatch, tmp_path, database_url, notifications_vapid_private_key=pem) as given:
        assert (await given.http.get("/api/notifications/vapid-key")).json()["public_key"] == b64url(point)


async def test_a_subscription_taken_over_by_another_user_gets_none_of_the_previous_owners_retries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    """The same browser, signed in as Ada then as Bob: Ada's notification waiting for its retry is dropped,
    not shown to Bob. Ada's retry is due before Bob's, so were it sent it would reach the receiver first."""
    script = [Answer(503, {"Retry-After": "1"}), Answer(503, {"Retry-After": "2"}), Answer(201)]
    browser = BrowserKeys()
    async with Receiver(script).running() as push, channels_parlour(monkeypatch, tmp_path, database_url) as parlour:
        ada, bob = await new_account(parlour.http, "ada"), await new_account(parlour.http, "bob")
        subscription = browser.subscription(f"{push.url}/push/shared-browser")
        await parlour.http.post("/api/notifications/push-subscriptions", json=subscription, headers=ada.headers)
        for_ada = notification_for(ada.user_id)
        await parlour.dispatch(for_ada)
        assert browser.decrypt((await push.next()).body)["id"] == for_ada.id

        taken = await parlour.http.post("/api/notifications/push-subscriptions", json=subscription, headers=bob.headers)
        assert taken.status_code == 200, taken.text
        for_bob = notification_for(bob.user_id)
        await parlour.dispatch(for_bob)
        assert browser.decrypt((await push.next()).body)["id"] == for_bob.id
        assert browser.decrypt((await push.next()).body)["id"] == for_bob.id, "Ada's retry was dropped"
