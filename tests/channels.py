"""Helpers of the notification channels' tests: a Parlour with the channels, receivers over real HTTP.

- `channels_parlour`: a running Parlour (every service, embedded wiring) whose notifications service is the
  channels' builder, so the test holds the real `Dispatcher` it hands notifications to.
- `Receiver`: an HTTP server on a free port (uvicorn, Starlette) that records each request and answers
  from a script (a status, headers), for webhooks and for a push service of the test's own.
- `WebPushTesting`: the npm package `web-push-testing` (a push service that is not Parlour's code), installed
  into a cache folder on first use and run as a child process on a free port.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import http_ece
import httpx
import jwt
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from parlour.bootstrap import SERVICES
from parlour.common.bus import MessageBus
from parlour.common.http.server import ParlourServer
from parlour.common.service import Infrastructure, ServiceParts
from parlour.notifications.adapters.outbound import Resolver, resolve
from parlour.notifications.channels import ChannelParts, build_channels
from parlour.notifications.domain.model import Notification
from tests.clients import new_account
from tests.harness import make_settings, running_parlour
from tests.waiting import eventually

EVENT_WITHIN = 15.0
WEB_PUSH_TESTING = "web-push-testing@1.2.2"
NPM_CACHE = Path(os.environ.get("PARLOUR_TEST_NPM_DIR", Path(__file__).resolve().parent.parent / ".venv" / "npm"))


def notification_for(user_id: str, chat_id: str = "chat-1", *, last_seq: int = 1, count: int = 1) -> Notification:
    """A notification as the decision side makes them (ids and topic by the spec's rules)."""
    topic = base64.urlsafe_b64encode(hashlib.sha256(chat_id.encode()).digest()).decode()[:32]
    return Notification(
        id=f"{chat_id}:{user_id}:{last_seq}",
        user_id=user_id,
        chat_id=chat_id,
        chat_kind="group",
        title="Team",
        body=f"{count} new messages from Ada in Team",
        count=count,
        last_seq=last_seq,
        urgency="normal",
        topic=topic,
        url=f"/#/chat/{chat_id}",
        created_at=datetime.now(UTC),
    )


@dataclass
class Channels:
    """A running Parlour with the channels: its HTTP client, the channels' parts (the dispatcher) and the
    process's bus (its parking lot is what an operator reads with `parlour dlq list`)."""

    http: httpx.AsyncClient
    parts: ChannelParts
    bus: MessageBus

    async def dispatch(self, *notifications: Notification) -> None:
        assert self.parts.dispatcher is not None
        await self.parts.dispatcher.dispatch(list(notifications))


@asynccontextmanager
async def channels_parlour(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    services: Sequence[str] | None = None,
    resolver: Resolver = resolve,
    verify: ssl.SSLContext | bool = True,
    **settings: Any,
) -> AsyncIterator[Channels]:
    """Parlour from the composition root with the channels as its notifications service (resolving names
    with `resolver`: the system's by default, a test's own to make a name resolve where DNS would not)."""
    built: list[tuple[ChannelParts, MessageBus]] = []

    async def build(infra: Infrastructure, stack: AsyncExitStack) -> ServiceParts:
        parts = await build_channels(infra, stack, resolver, verify)
        built.append((parts, infra.bus))
        return parts

    monkeypatch.setitem(SERVICES, "notifications", build)
    values: dict[str, Any] = {
        "notifications_allow_private_targets": True,
        "notifications_retry_base_seconds": 0.2,
        **settings,
    }
    config = make_settings(tmp_path, database_url, **values)
    async with running_parlour(config, services) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        yield Channels(http, *built[0])


@dataclass(frozen=True)
class Received:
    """One request a receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # the loop's clock when it arrived


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


def free_listener() -> socket.socket:
    """A bound IPv4 loopback socket on a port the kernel picked."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    return listener


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate and key issued by a certificate authority made for one test, and a client
    context that trusts that authority only."""

    certificate: Path
    key: Path
    client: ssl.SSLContext


def make_certificate_authority(folder: Path, names: Sequence[str]) -> TlsFiles:
    """A fresh CA, and a server certificate for `names` (DNS names) signed by it, written into `folder`."""
    now = datetime.now(UTC)

    def issued(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Parlour test CA")])
    ca = issued("Parlour test CA", ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = issued(names[0], server_key, ca_name, ca_key, ca=False)
    certificate, key = folder / "server.pem", folder / "server.key"
    certificate.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return TlsFiles(certificate, key, client)


class Receiver:
    """Records every POST; answers from `script` (then 200 once it runs out). `url` is where it listens."""

    def __init__(self, script: Sequence[Answer] = ()) -> None:
        self.script = list(script)
        self.requests: asyncio.Queue[Received] = asyncio.Queue()
        self.url = ""
        self.port = 0

    async def _handle(self, request: Request) -> Response:
        received = Received(
            request.url.path, dict(request.headers), await request.body(), asyncio.get_running_loop().time()
        )
        answer = self.script.pop(0) if self.script else Answer(200)
        await self.requests.put(received)
        return Response(status_code=answer.status, headers=answer.headers)

    async def next(self, within: float = EVENT_WITHIN) -> Received:
        """The next request, or a failure after `within` seconds."""
        try:
            return await asyncio.wait_for(self.requests.get(), within)
        except TimeoutError:
            raise AssertionError(f"no request reached the receiver within {within} s") from None

    @asynccontextmanager
    async def running(self, tls: TlsFiles | None = None) -> AsyncIterator[Receiver]:
        """Serve on 127.0.0.1 (HTTPS with `tls`'s certificate when given) until the block ends."""
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        listener = free_listener()
        config = uvicorn.Config(
            app,
            log_config=None,  # the process's logging stays Parlour's (tests/unit/test_logging.py)
            log_level="warning",
            lifespan="off",
            loop="none",
            ssl_certfile=None if tls is None else tls.certificate,
            ssl_keyfile=None if tls is None else tls.key,
        )
        server = ParlourServer(config)
        task = asyncio.create_task(server.serve(sockets=[listener]))
        try:
            async with asyncio.timeout(EVENT_WITHIN):
                while not server.started:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.005)  # uvicorn exposes no start-up event, only this flag
            self.port = listener.getsockname()[1]
            self.url = f"http://127.0.0.1:{self.port}"
            yield self
        finally:
            server.should_exit = True
            await task
            listener.close()


# -- web-push-testing -------------------------------------------------------------------------------


def web_push_testing_script() -> Path:
    """The package's server script, installed into `NPM_CACHE` with npm the first time.

    The test processes (scripts/test runs two) install under one file lock: the script exists before npm
    has finished, so without it a second process could start a half-installed package."""
    script = NPM_CACHE / "node_modules" / "web-push-testing" / "src" / "bin" / "server.js"
    installed = NPM_CACHE / ".installed"
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    with (NPM_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed.exists() and installed.read_text() == WEB_PUSH_TESTING:
            return script
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            pytest.fail("web-push-testing needs Node.js and npm on the PATH")
        subprocess.run(
            [npm, "install", "--prefix", str(NPM_CACHE), "--no-audit", "--no-fund", WEB_PUSH_TESTING],
            check=True,
            capture_output=True,
            timeout=300,
        )
        installed.write_text(WEB_PUSH_TESTING)
    return script


@dataclass
class PushClient:
    """A subscription web-push-testing made for us, as a browser's PushSubscription.toJSON() gives it."""

    endpoint: str
    p256dh: str
    auth: str
    client_hash: str

    def as_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class WebPushTesting:
    """A running web-push-testing server and a client of its REST API."""

    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url
        self._http = http

    async def subscribe(self, application_server_key: str) -> PushClient:
        response = await self._http.post(
            f"{self.base_url}/subscribe",
            json={"userVisibleOnly": "true", "applicationServerKey": application_server_key},
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        return PushClient(data["endpoint"], data["keys"]["p256dh"], data["keys"]["auth"], data["clientHash"])

    async def messages(self, client: PushClient) -> list[dict[str, Any]]:
        response = await self._http.post(f"{self.base_url}/get-notifications", json={"clientHash": client.client_hash})
        assert response.status_code == 200, response.text
        return [json.loads(message) for message in response.json()["data"]["messages"]]

    async def expire(self, client: PushClient) -> None:
        response = await self._http.post(f"{self.base_url}/expire-subscription/{client.client_hash}")
        assert response.status_code == 200, response.text


def _free_port() -> int:
    with contextlib.closing(free_listener()) as probe:
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def web_push_testing_process(log_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`node server.js PORT` in the foreground (not the package's daemonising CLI): ours to stop."""
    script = web_push_testing_script()
    port = _free_port()
    log = (log_dir / "web-push-testing.log").open("wb")
    process = subprocess.Popen(["node", str(script), str(port)], cwd=log_dir, stdout=log, stderr=log)
    try:
        yield process, f"http://localhost:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@asynccontextmanager
async def web_push_testing(log_dir: Path) -> AsyncIterator[WebPushTesting]:
    """A web-push-testing server, answering `/status` before this yields."""
    with web_push_testing_process(log_dir) as (process, base_url):
        async with httpx.AsyncClient(timeout=10) as http:
            async with asyncio.timeout(EVENT_WITHIN):
                while True:  # a child process: no event crosses the boundary, so poll with a deadline
                    if process.poll() is not None:
                        raise RuntimeError(f"web-push-testing exited with {process.returncode}")
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.post(f"{base_url}/status")).status_code == 200:
                            break
                    await asyncio.sleep(0.05)
            yield WebPushTesting(base_url, http)


# -- a push service of the test's own: checks VAPID, decrypts with http_ece ------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserKeys:
    """What a browser keeps of a push subscription: its ECDH private key and the auth secret."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def subscription(self, endpoint: str) -> dict[str, Any]:
        return {"endpoint": endpoint, "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth_secret)}}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        """The payload of an aes128gcm push message (RFC 8291), decrypted as the browser would."""
        plain = http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm")
        decoded: dict[str, Any] = json.loads(plain)
        return decoded


def verified_vapid(received: Received, audience: str, public_key: str) -> dict[str, Any]:
    """The VAPID claims of a push request (RFC 8292), after checking its token against `public_key`."""
    scheme, _, parameters = received.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.strip().split("=", 1) for part in parameters.split(","))
    assert fields["k"] == public_key, "signed with the key Parlour publishes"
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(fields["k"]))
    claims: dict[str, Any] = jwt.decode(fields["t"], key, algorithms=["ES256"], audience=audience)
    assert claims["sub"].startswith(("mailto:", "https://"))
    return claims


# What a push service answers in `a_503_then_201_is_retried_once_with_the_same_topic`.
A_503_THEN_201 = (Answer(503, {"Retry-After": "1"}), Answer(201), Answer(201))


async def a_410_removes_the_subscription(parlour: Channels, service: WebPushTesting) -> None:
    """A subscription whose push service answers 410 is removed, and nothing reaches the browser (both
    modes: the e2e and the distributed channels suites)."""
    ada = await new_account(parlour.http, "ada")
    key = (await parlour.http.get("/api/notifications/vapid-key")).json()["public_key"]
    browser = await service.subscribe(key)
    await parlour.http.post("/api/notifications/push-subscriptions", json=browser.as_json(), headers=ada.headers)
    await service.expire(browser)

    await parlour.dispatch(notification_for(ada.user_id))

    async def removed() -> bool:
        listed = await parlour.http.get("/api/notifications/push-subscriptions", headers=ada.headers)
        return bool(listed.json() == {"subscriptions": []})

    await eventually(removed, what="the expired subscription's removal")
    assert await service.messages(browser) == []


async def a_503_then_201_is_retried_once_with_the_same_topic(parlour: Channels, push: Receiver) -> None:
    """`push` answering `A_503_THEN_201`: the notification is retried after `Retry-After`, delivered once,
    each attempt with a valid VAPID token, aes128gcm, TTL, urgency and the chat's topic (both modes)."""
    browser = BrowserKeys()
    ada = await new_account(parlour.http, "ada")
    key = (await parlour.http.get("/api/notifications/vapid-key")).json()["public_key"]
    subscription = browser.subscription(f"{push.url}/push/ada-laptop")
    created = await parlour.http.post("/api/notifications/push-subscriptions", json=subscription, headers=ada.headers)
    assert created.status_code == 201, created.text

    notification = notification_for(ada.user_id)
    await parlour.dispatch(notification)
    refused, accepted = await push.next(), await push.next()

    assert accepted.at - refused.at >= 1.0, "Retry-After: 1 was honoured"
    for request in (refused, accepted):
        assert request.path == "/push/ada-laptop"
        claims = verified_vapid(request, push.url, key)
        assert claims["exp"] > 0
        assert request.headers["content-encoding"] == "aes128gcm"
        assert request.headers["ttl"] == "86400"
        assert request.headers["urgency"] == "normal"
        assert request.headers["topic"] == notification.topic
        assert browser.decrypt(request.body)["id"] == notification.id

    newer = replace(notification_for(ada.user_id, last_seq=2, count=2), urgency="high")
    await parlour.dispatch(newer)
    following = await push.next()
    assert browser.decrypt(following.body)["id"] == newer.id, "the first one was delivered once, not again"
    assert following.headers["urgency"] == "high"
    assert following.headers["topic"] == notification.topic, "one topic per chat"
