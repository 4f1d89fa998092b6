"""The HTTP edge under hostile input: body limits, slow headers, proxy headers, security headers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.clients import assert_problem, new_account
from tests.harness import make_settings, running_parlour

# Far more than any limit, and more than the socket buffers on the way can absorb.
HUGE = 512 * 1024 * 1024
CHUNK = b"x" * (64 * 1024)
HALF_OPEN = 100  # sockets that connect and never finish their headers


async def _open(base_url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(base_url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict[str, Any]]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, json.loads(body)


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(http: httpx.AsyncClient) -> None:
    reader, writer = await _open(str(http.base_url))
    try:
        writer.write(
            b"POST /auth/sessions HTTP/1.1\r\nHost: parlour\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {HUGE}\r\n\r\n".encode()
            + b'{"username": "ada", "password": "'
        )
        await writer.drain()
        async with asyncio.timeout(5):  # the answer comes without the 512 MiB ever being sent
            status, headers, body = await _read_response(reader)
    finally:
        writer.close()
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert body["code"] == "body_too_large"
    assert body["instance"] == "/auth/sessions"


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    created = await http.post("/api/chats", json={"kind": "group", "title": "big"}, headers=account.headers)
    chat_id = created.json()["id"]
    reader, writer = await _open(str(http.base_url))
    sent = 0

    async def stream() -> None:
        nonlocal sent
        writer.write(
            f"POST /api/chats/{chat_id}/messages HTTP/1.1\r\nHost: parlour\r\n"
            f"Authorization: Bearer {account.access_token}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        while sent < HUGE:
            writer.write(f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n")
            sent += len(CHUNK)
            await writer.drain()

    streaming = asyncio.create_task(stream())
    try:
        async with asyncio.timeout(10):
            status, _, body = await _read_response(reader)
    finally:
        streaming.cancel()
        await asyncio.gather(streaming, return_exceptions=True)
        writer.close()
    assert status == 413
    assert body["code"] == "body_too_large"
    assert sent < HUGE // 8


async def test_bodies_within_the_limit_still_work(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    created = await http.post("/api/chats", json={"kind": "group", "title": "fine"}, headers=account.headers)
    chat_id = created.json()["id"]
    sent = await http.post(f"/api/chats/{chat_id}/messages", json={"body": "é" * 4000}, headers=account.headers)
    assert sent.status_code == 201, sent.text
    too_long = await http.post("/auth/sessions", json={"username": "ada", "password": "p" * 20_000})
    assert_problem(too_long, 413, "body_too_large")


async def test_connections_that_never_complete_their_headers_are_closed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None, http_header_timeout_seconds=1.0)
    async with running_parlour(settings, ["auth"]) as base_url:
        sockets = [await _open(base_url) for _ in range(HALF_OPEN)]
        for index, (_, writer) in enumerate(sockets):
            if index % 2:  # half of them stop mid-header, the others say nothing at all
                writer.write(b"GET /health HTTP/1.1\r\nHost: parlour\r\nX-Slow: ")
        try:
            async with asyncio.timeout(10):  # the deadline is 1 s: closed well within this
                endings = await asyncio.gather(*(reader.read() for reader, _ in sockets))
        finally:
            for _, writer in sockets:
                writer.close()
        assert endings == [b""] * HALF_OPEN  # closed by the server, without an answer
        async with httpx.AsyncClient(base_url=base_url) as client:
            assert (await client.get("/health")).status_code == 200


async def test_every_api_answer_says_nosniff(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    answers = [
        await http.get("/auth/users/me", headers=account.headers),
        await http.get("/auth/users/me"),
        await http.get("/nowhere"),
        await http.post("/auth/sessions", json={"username": "ada", "password": "p" * 20_000}),
        await http.get("/health"),
    ]
    assert [answer.status_code for answer in answers] == [200, 401, 404, 413, 200]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_the_docs_page_has_a_content_security_policy_that_names_its_inline_script(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["connect-src"] == "'self'"
    (inline,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy["script-src"].split()
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]


async def test_metrics_answer_only_the_configured_addresses_or_the_bearer_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None, metrics_allowed_addresses=["10.0.0.0/8"], metrics_token="s3cret-token")
    async with running_parlour(settings, ["auth"]) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        assert_problem(await client.get("/metrics"), 403, "metrics_forbidden")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert_problem(wrong, 403, "metrics_forbidden")
        allowed = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert allowed.status_code == 200
        assert "parlour_http_requests_total" in allowed.text
    default = make_settings(tmp_path, None)  # loopback only
    async with running_parlour(default, ["auth"]) as base_url, httpx.AsyncClient(base_url=base_url) as loopback:
        assert (await loopback.get("/metrics")).status_code == 200


def _property(schema: dict[str, Any], model: str, name: str) -> dict[str, Any]:
    field: dict[str, Any] = schema["components"]["schemas"][model]["properties"][name]
    return next((option for option in field.get("anyOf", []) if option.get("type") == "string"), field)


async def test_the_openapi_document_is_as_strict_as_the_server(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    assert _property(schema, "SignUpRequest", "username")["maxLength"] == 32
    assert _property(schema, "LogInRequest", "username")["maxLength"] == 32
    assert _property(schema, "SendRequest", "body")["maxLength"] == 4000
    assert _property(schema, "EditRequest", "body")["maxLength"] == 4000
    assert _property(schema, "GroupChatRequest", "title")["maxLength"] == 128
    assert _property(schema, "RenameRequest", "title")["maxLength"] == 128
    assert _property(schema, "SendRequest", "client_id")["maxLength"] == 64
    assert {"200", "201"} <= set(schema["paths"]["/api/chats"]["post"]["responses"])
    account = await new_account(http)
    too_long = await http.post("/auth/users", json={"username": "a" * 33, "password": "correct horse battery"})
    assert_problem(too_long, 422, "username_invalid")
    created = await http.post("/api/chats", json={"kind": "group", "title": "t"}, headers=account.headers)
    chat_id = created.json()["id"]
    for seq in (False, True, "1", 1.5):
        read = await http.post(f"/api/chats/{chat_id}/read", json={"seq": seq}, headers=account.headers)
        assert_problem(read, 422, "invalid_input")
    integral = await http.post(f"/api/chats/{chat_id}/read", json={"seq": 0.0}, headers=account.headers)
    assert integral.status_code == 204  # JSON Schema's integer: 0.0 is one
    long_id = await http.post(
        f"/api/chats/{chat_id}/messages", json={"client_id": "k" * 65, "body": "x"}, headers=account.headers
    )
    assert_problem(long_id, 422, "client_id_invalid")


async def test_a_wrong_method_names_every_method_of_the_path(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    for path, methods in [
        ("/auth/sessions", {"GET", "POST", "DELETE"}),
        ("/auth/sessions/refresh", {"POST"}),  # not taken for a session id
        ("/api/chats/some-chat", {"GET", "PATCH"}),
        ("/api/chats/some-chat/members/some-user", {"DELETE", "PATCH"}),
    ]:
        response = await http.put(path, headers=account.headers)
        assert_problem(response, 405, "method_not_allowed")
        assert {method.strip() for method in response.headers["allow"].split(",")} == methods
