"""The WebSocket endpoint `GET /gateway/ws?pass=...`: the asyncio layer around the session state machine.

A raw ASGI app (no per-frame framework overhead). Per connection: one reader loop (decode, feed the
session, hand its commands to the process's `CommandBatcher`, which never waits on the bus) and one
writer task for what cannot be written at once. The hub calls `notify` once per delivery batch: when the
socket can take data now (uvicorn's websockets sans-I/O protocol, not paused), the session's frames are
written right there, without waking a task (`DirectWriter`); otherwise the writer task drains the buffer
through ASGI `send`, which waits for the socket. Only one of the two holds frames at a time, so order
holds. When the session decides a close that does not flush (slow consumer, missed pong), `notify`
cancels a writer stuck on a full socket and closes at once, aborting the transport if even the close
frame cannot be written within `close_timeout`.

Errors become close codes here and only here (`close_for`); every refusal is a completed handshake
followed by a close frame with a 44xx/10xx code, which a client tells apart from a network failure (1006).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import structlog

from parlour.common import tracing
from parlour.common.clock import Clock
from parlour.common.errors import ParlourError, Unavailable
from parlour.gateway.adapters.codec import decode_binary, decode_text
from parlour.gateway.application.batcher import CommandBatcher
from parlour.gateway.application.hub import Hub
from parlour.gateway.application.passes import PassBook
from parlour.gateway.domain.errors import GatewayDraining, OriginRefused, PassRejected
from parlour.gateway.domain.frames import batched
from parlour.gateway.domain.origins import origin_allowed
from parlour.gateway.domain.passes import PassHolder
from parlour.gateway.domain.protocol import Close, CloseCode, Destination
from parlour.gateway.domain.session import Command, Session, SessionLimits
from parlour.gateway.infrastructure.metrics import GatewayMetrics

logger = structlog.get_logger(__name__)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# A batch frame never grows past this, so one slow write cannot hold much back.
BATCH_MAX_BYTES = 64 * 1024


def close_for(error: ParlourError) -> tuple[CloseCode, str]:
    """The one mapping from errors to WebSocket close codes; the reason is the error's stable code."""
    if isinstance(error, PassRejected):
        return CloseCode.PASS_REJECTED, error.code
    if isinstance(error, OriginRefused):
        return CloseCode.ORIGIN_FORBIDDEN, error.code
    if isinstance(error, GatewayDraining):
        return CloseCode.SERVICE_RESTART, error.code
    if isinstance(error, Unavailable):
        return CloseCode.TRY_AGAIN_LATER, error.code
    return CloseCode.INTERNAL_ERROR, error.code


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    limits: SessionLimits
    allowed_origins: tuple[str, ...]
    close_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class ConnectionDeps:
    """What every connection of the endpoint shares."""

    hub: Hub
    commands: CommandBatcher
    clock: Clock
    metrics: GatewayMetrics
    config: EndpointConfig


class GatewayEndpoint:
    """The ASGI app of `/gateway/ws`: admission (origin, draining, pass), then one `Connection`."""

    def __init__(self, passes: PassBook, deps: ConnectionDeps) -> None:
        self._passes = passes
        self._deps = deps

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or (await receive())["type"] != "websocket.connect":
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            holder = await self._admit(scope, query.get("pass", [None])[0])
        except ParlourError as error:
            await self._refuse(send, error)
            return
        except Exception:  # the store failed in a way its adapter did not translate: still a clear refusal
            logger.exception("websocket admission failed")
            await self._refuse(send, Unavailable())
            return
        await send({"type": "websocket.accept"})
        deps = self._deps
        session = Session(uuid.uuid4().hex, holder.user_id, deps.config.limits, deps.clock.monotonic())
        batch = query.get("batch", ["0"])[0] in {"1", "true"}
        connection = Connection(session, receive, send, deps, batch=batch)
        with structlog.contextvars.bound_contextvars(conn_id=session.id, user_id=session.user_id):
            await connection.run()

    async def _admit(self, scope: Message, secret: str | None) -> PassHolder:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", [])}
        if not origin_allowed(headers.get("origin"), self._deps.config.allowed_origins):
            raise OriginRefused()
        if self._deps.hub.draining:
            raise GatewayDraining()
        return await self._passes.redeem(secret)

    async def _refuse(self, send: Send, error: ParlourError) -> None:
        code, reason = close_for(error)
        self._deps.metrics.refused.labels(str(int(code))).inc()
        logger.info("websocket refused", code=int(code), reason=reason)
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": int(code), "reason": reason})


class DirectWriter:
    """Writes text frames straight into uvicorn's websockets sans-I/O protocol, when it can take them now.

    ASGI's `send` is a coroutine per frame; the protocol underneath is synchronous (`send_text`, then one
    `transport.write`), so a batch of frames for a socket that is not paused costs no await at all.
    """

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    @classmethod
    def of(cls, receive: Receive) -> DirectWriter | None:
        """The writer for the connection behind `receive`, if its server protocol allows one."""
        protocol = getattr(receive, "__self__", None)
        needed = ("conn", "transport", "writable", "close_sent", "disconnected")
        if protocol is None or not all(hasattr(protocol, name) for name in needed):
            return None
        return cls(protocol)

    @property
    def ready(self) -> bool:
        """Whether a write now goes out without waiting (open, handshake done, not paused)."""
        protocol = self._protocol
        return (
            protocol.writable.is_set()
            and not protocol.close_sent
            and not protocol.disconnected
            and not protocol.transport.is_closing()
        )

    def write(self, frames: list[bytes]) -> None:
        """Frame and write `frames` in one `transport.write`."""
        protocol = self._protocol
        for data in frames:
            protocol.conn.send_text(data)
        protocol.transport.write(b"".join(protocol.conn.data_to_send()))


class Connection:
    """One accepted WebSocket: a reader loop and a writer around one `Session`."""

    def __init__(self, session: Session, receive: Receive, send: Send, deps: ConnectionDeps, *, batch: bool) -> None:
        self._session = session
        self._receive = receive
        self._send = send
        self._hub = deps.hub
        self._commands = deps.commands
        self._clock = deps.clock
        self._metrics = deps.metrics
        self._close_timeout = deps.config.close_timeout
        self._max_frame = deps.config.limits.max_frame_bytes
        self._batch = batch
        self._direct = DirectWriter.of(receive)
        self._writing = False  # the writer task holds frames: direct writes wait their turn
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._cutting = False
        self._gave_up = False  # the close could not be written nor the transport aborted
        self._peer_close: tuple[int, str] | None = None
        self._opening: asyncio.Future[bool] | None = None  # the session's announcement, until it is out

    async def run(self) -> None:
        session = self._session
        try:
            self._opening = await self._hub.attach(session, self.notify)
        except Exception as error:
            logger.warning("websocket could not register", exc_info=True)
            code, reason = close_for(error if isinstance(error, ParlourError) else Unavailable())
            await self._close(Close(code, reason))
            return
        self._metrics.sessions.inc()
        logger.info("websocket opened")
        self._writer = asyncio.create_task(self._write_loop())
        self._reader = asyncio.create_task(self._read_loop())
        self.notify()
        try:
            await self._reader
        except asyncio.CancelledError:
            if not self._gave_up:
                raise
        finally:
            await self._finish()

    def notify(self) -> None:
        """Something changed in the session: wake the writer, or cut the connection at once."""
        close = self._session.closing
        if close is not None and not close.flush and not self._cutting:
            self._cutting = True
            if self._writer is not None:
                self._writer.cancel()
            self._closer = asyncio.create_task(self._close(close))
            return
        direct = self._direct
        if direct is not None and not self._writing and direct.ready:
            frames = self._session.data_to_send()
            if frames:
                try:
                    direct.write(batched(frames, BATCH_MAX_BYTES) if self._batch else frames)
                except Exception:  # the peer vanished mid-write (InvalidState): the reader sees the disconnect
                    logger.debug("websocket direct write failed", exc_info=True)
            if self._session.close_to_send is None:
                return
        self._wake.set()

    async def _read_loop(self) -> None:
        session = self._session
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                self._peer_close = (int(message.get("code", 1005)), str(message.get("reason") or ""))
                return
            if kind != "websocket.receive":
                continue
            text = message.get("text")
            if text is not None:
                inbound = decode_text(text, self._max_frame)
            else:
                inbound = decode_binary(message.get("bytes") or b"", self._max_frame)
            session.receive(inbound, self._clock.monotonic())
            commands = session.commands_to_send()
            if self._opening is not None and any(c.destination is Destination.PRESENCE for c in commands):
                await self._opening  # presence ignores the activity of a session it has not heard open
                self._opening = None
            if tracing.enabled:
                self._submit_traced(commands)
            else:
                for command in commands:
                    self._commands.submit(command, session, self.notify)
            self.notify()
            await self._commands.room()

    def _submit_traced(self, commands: list[Command]) -> None:
        # Where a client's command enters the system: each is the root of a trace of its own (a `receive`
        # span), linked to the connection's span if the server made one (not its child: one trace per
        # message, not one per connection).
        root, links = tracing.new_trace()
        for command in commands:
            with tracing.span(f"receive {command.type}", context=root, links=links, kind=tracing.SpanKind.SERVER):
                self._commands.submit(command, self._session, self.notify)

    async def _write_loop(self) -> None:
        try:
            await self._write_frames()
        except (OSError, RuntimeError):
            pass  # the peer is gone: the reader sees the disconnect
        except Exception:
            logger.exception("websocket writer failed")
            await self._close(Close(CloseCode.INTERNAL_ERROR, "internal error"))

    async def _write_frames(self) -> None:
        session = self._session
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._writing = True
            while frames := session.data_to_send():
                writes = batched(frames, BATCH_MAX_BYTES) if self._batch else frames
                for data in writes:
                    await self._send({"type": "websocket.send", "text": data.decode()})
            self._writing = False
            close = session.close_to_send
            if close is not None:
                await self._close(close)
                return

    async def _close(self, close: Close) -> None:
        try:
            async with asyncio.timeout(self._close_timeout):
                await self._send({"type": "websocket.close", "code": int(close.code), "reason": close.reason})
        except TimeoutError:
            logger.warning("websocket close timed out: aborting", code=int(close.code))
            if not self._abort() and self._reader is not None:
                self._gave_up = True
                self._reader.cancel()
        except (OSError, RuntimeError):
            pass  # the peer is gone already

    def _abort(self) -> bool:
        # ASGI has no abort; uvicorn's protocols own `transport`, reachable from their bound `receive`.
        transport = getattr(getattr(self._receive, "__self__", None), "transport", None)
        abort = getattr(transport, "abort", None)
        if abort is None:
            return False
        abort()
        return True

    async def _finish(self) -> None:
        session = self._session
        decided = session.closing
        session.closed()
        for task in (self._writer, self._closer):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await asyncio.shield(self._hub.detach(session))
        self._metrics.sessions.dec()
        if decided is not None:
            code, reason, by = int(decided.code), decided.reason, "server"
        else:
            code, reason = self._peer_close or (1006, "")
            by = "client"
        self._metrics.closed.labels(str(code)).inc()
        log = logger.warning if decided is not None and decided.code == CloseCode.SLOW_CONSUMER else logger.info
        log("websocket closed", code=code, reason=reason, by=by)
