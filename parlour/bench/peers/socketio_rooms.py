"""A minimal python-socketio room server: clients `join` a room; a `msg` goes to everyone in it.

The idiomatic Socket.IO way to fan out: `emit(..., room=...)` to the room, the sender included. No
authentication, no persistence, no ordering numbers beyond what one TCP connection gives.

    uvicorn parlour.bench.peers.socketio_rooms:app --loop uvloop --http httptools --ws websockets-sansio
"""

from __future__ import annotations

from typing import Any

import socketio

ROOM = "bench"

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
app = socketio.ASGIApp(sio)


@sio.event
async def join(sid: str, room: str) -> str:
    await sio.enter_room(sid, room)
    return "joined"


@sio.event
async def msg(sid: str, data: Any) -> None:
    await sio.emit("msg", data, room=ROOM)
