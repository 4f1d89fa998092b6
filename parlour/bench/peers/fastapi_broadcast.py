"""A minimal FastAPI broadcast server: the ConnectionManager of FastAPI's WebSocket docs, unchanged in spirit.

Every text frame a client sends goes to every connected client (the sender too), one `send_text` after
another. No authentication, no persistence, no ordering numbers, no slow-consumer protection: that is
the pattern as documented, and what Parlour is compared with.

    uvicorn parlour.bench.peers.fastapi_broadcast:app --loop uvloop --http httptools --ws websockets-sansio
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocket, WebSocketDisconnect


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        self.active_connections.remove(websocket)

    async def broadcast(self, message: str) -> None:
        for connection in self.active_connections:
            await connection.send_text(message)


manager = ConnectionManager()
app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await manager.connect(websocket)
    try:
        while True:
            data = await websocket.receive_text()
            await manager.broadcast(data)
    except WebSocketDisconnect:
        manager.disconnect(websocket)
