"""The bench's WebSocket client: picows (C-level framing, no per-frame coroutine) around a `Dialect`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from parlour.bench.protocol import READY, Dialect, Event


class Owner(Protocol):
    """Who hears what a `Link` receives."""

    def on_events(self, link: Link, events: list[Event]) -> None: ...

    def on_closed(self, link: Link) -> None: ...


class Link(WSListener):
    """One WebSocket connection: frames in through the dialect, events out to the owner."""

    def __init__(self, dialect: Dialect, owner: Owner) -> None:
        super().__init__()
        self.dialect = dialect
        self.owner = owner
        self.transport: WSTransport | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.close_reason = ""
        self.dropped = False  # closed on purpose by the bench

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            events, replies = self.dialect.feed(frame.get_payload_as_utf8_text())
            for reply in replies:
                transport.send(WSMsgType.TEXT, reply.encode())
            if events:
                if not self.ready.done() and any(event is READY for event in events):
                    self.ready.set_result(None)
                self.owner.on_events(self, events)
        elif frame.msg_type is WSMsgType.CLOSE:
            self.close_code = frame.get_close_code().value
            self.close_reason = frame.get_close_reason() or ""
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready: {self.close_code} {self.close_reason}"))
            self.ready.exception()  # retrieved: nobody may be waiting any more
        self.owner.on_closed(self)

    def send_text(self, text: str) -> None:
        if self.transport is not None:
            self.transport.send(WSMsgType.TEXT, text.encode())

    def drop(self) -> None:
        """Cut the TCP connection without a closing handshake, as a network failure would."""
        self.dropped = True
        if self.transport is not None:
            self.transport.underlying_transport.abort()

    def close(self) -> None:
        self.dropped = True
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect()

    async def closed(self) -> None:
        if self.transport is not None:
            await self.transport.wait_disconnected()


async def open_link(
    url: str, dialect: Dialect, owner: Owner, *, resume: Mapping[str, int] | None, within: float
) -> Link:
    """Connect to `url`, greet, and return once the dialect says the connection is ready."""
    _, link = await ws_connect(
        lambda: Link(dialect, owner), url, websocket_handshake_timeout=within, max_frame_size=16 * 1024 * 1024
    )
    assert isinstance(link, Link)
    frames, ready_now = dialect.greeting(resume)
    for frame in frames:
        link.send_text(frame)
    if ready_now:
        link.ready.set_result(None)
    try:
        async with asyncio.timeout(within):
            await link.ready
    except BaseException:
        link.drop()  # never two sockets: one that did not get ready in time is cut, not left open
        raise
    return link
