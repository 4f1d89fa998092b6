"""Web Push (RFC 8030) through `pywebpush`'s encryption: aes128gcm (RFC 8291), VAPID (RFC 8292).

The payload is encrypted and the VAPID token signed on a worker thread (CPU work), then posted with the
async `Outbound` (resolve once, checked address). Headers: `TTL` (the notification's, one day),
`Urgency` (high for a mention or a direct chat), `Topic` (one per chat, so a push service replaces an
undelivered notification of the chat with the newer one).

The VAPID key pair is created on first start, like the auth service's signing keys: a PEM file in the data
folder (`vapid/private.pem`, written once, atomically; a second process starting at the same moment reads
the winner's), unless `PARLOUR_NOTIFICATIONS_VAPID_PRIVATE_KEY` holds one (processes without a shared data
folder must all be given the same key).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher

from parlour.common.clock import Clock
from parlour.notifications.adapters.outbound import Outbound
from parlour.notifications.application.channel_ports import PushSender
from parlour.notifications.domain.channel_errors import TargetRefused
from parlour.notifications.domain.channels import Attempt, PushSubscription
from parlour.notifications.domain.model import Notification

# A push service takes at least 4096 bytes of payload; the encryption adds 86 (RFC 8291, one record).
_BODY_CHARS = 1000
# The VAPID token's lifetime (RFC 8292 allows at most 24 h).
_TOKEN_SECONDS = 12 * 3600


def b64url(data: bytes) -> str:
    """Unpadded base64url, as Web Push writes keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class VapidKey:
    """The application server's key pair (P-256)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._vapid = Vapid02()
        self._vapid.private_key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key = b64url(raw)

    @classmethod
    def from_pem(cls, pem: bytes) -> VapidKey:
        """The key pair of a PEM private key; `ValueError` if it is not a P-256 one."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("a VAPID key must be an EC P-256 private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path, configured: str | None = None) -> VapidKey:
        """The configured key, else the one in `path`, else a new one written there (0600) first."""
        if configured:
            return cls.from_pem(configured.encode())
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            partial = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
            try:
                os.link(partial, path)  # fails if another process got there first: theirs is kept
            except FileExistsError:
                pass
            finally:
                partial.unlink()
        return cls.from_pem(path.read_bytes())

    def authorization(self, audience: str, subject: str, expires: int) -> str:
        """The `Authorization: vapid t=…, k=…` header for a push service at `audience` (its origin)."""
        claims = {"aud": audience, "sub": subject, "exp": expires}
        header: str = self._vapid.sign(claims)["Authorization"]
        return header


def push_payload(notification: Notification) -> bytes:
    """What the service worker gets (JSON): enough to show the notification and open the chat."""
    body = notification.body
    if len(body) > _BODY_CHARS:
        body = body[: _BODY_CHARS - 1] + "…"
    return json.dumps(
        {
            "id": notification.id,
            "title": notification.title,
            "body": body,
            "url": notification.url,
            "chat_id": notification.chat_id,
            "count": notification.count,
            "tag": notification.topic,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


class WebPushSender(PushSender):
    """Encrypts with pywebpush, signs with the VAPID key, posts through `Outbound`."""

    def __init__(self, key: VapidKey, outbound: Outbound, clock: Clock, *, subject: str) -> None:
        self._key = key
        self._outbound = outbound
        self._clock = clock
        self._subject = subject

    async def send(self, subscription: PushSubscription, notification: Notification) -> Attempt:
        try:
            target = self._outbound.check(subscription.endpoint)
        except TargetRefused as refused:
            return Attempt(None, error=refused.message, refused=True)
        expires = int(self._clock.now()) + _TOKEN_SECONDS
        try:
            body, authorization = await asyncio.to_thread(
                self._seal, subscription, notification, target.origin, expires
            )
        except Exception as error:  # keys that cannot be encrypted for: the same every time, never retried
            return Attempt(None, error=f"cannot encrypt for this subscription: {type(error).__name__}", refused=True)
        headers = {
            "Authorization": authorization,
            "TTL": str(notification.ttl_seconds),
            "Urgency": notification.urgency,
            "Topic": notification.topic,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        return await self._outbound.post(subscription.endpoint, body, headers)

    def _seal(
        self, subscription: PushSubscription, notification: Notification, audience: str, expires: int
    ) -> tuple[bytes, str]:
        info: dict[str, Any] = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        sealed = WebPusher(info).encode(push_payload(notification), content_encoding="aes128gcm")
        body: bytes = sealed["body"]
        return body, self._key.authorization(audience, self._subject, expires)
