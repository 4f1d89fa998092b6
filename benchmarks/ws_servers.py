"""Which WebSocket server should carry the gateway's hot path? Fan-out deliveries/s and memory per idle socket.

    .venv/bin/python benchmarks/ws_servers.py [--fanout-conns 500] [--frames 200] [--idle-conns 5000]

Each candidate runs alone in its own process on uvloop, serving the same tiny app: keep every connection,
and on `go K` from any client write K frames (~230 bytes of JSON, the size of a typical `message.new`) to
every connection, frame by frame, with each server's own way of writing to many sockets. A client process
(picows, the cheapest client in Python) holds the connections, sends `go`, and times until every connection
has every frame (best of `--rounds`), and the server process's CPU time per delivery (least of the rounds:
the figure that holds on a busy machine). Memory: the server's RSS with `--idle-conns` idle connections,
minus its RSS before them.

Candidates: uvicorn with each WebSocket implementation (`websockets-sansio`, the legacy `websockets`,
`wsproto`) behind a raw ASGI app, the `websockets` library's own server, and picows. Results go to stdout
as JSON lines; docs/benchmarks.md has the figures of this machine and the choice made from them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
import uvloop
import websockets
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect, ws_create_server
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve

SERVERS = ["uvicorn-websockets-sansio", "uvicorn-websockets", "uvicorn-wsproto", "websockets", "picows"]
FRAME = (
    '{"type":"message.new","chat_id":"4f6c2a9e-8d1b-4c3a-9f2e-7b5d6c1a0e9f","seq":%d,'
    '"message_id":"0b7e5c1d-2a3f-4e6b-8c9d-1f2a3b4c5d6e","sender_id":"9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",'
    '"body":"hello there","created_at":"2026-01-01T00:00:00Z"}'
)


# --- servers ------------------------------------------------------------------------------------------


def asgi_app() -> Callable[..., Awaitable[None]]:
    sends: set[Callable[[dict[str, Any]], Awaitable[None]]] = set()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        sends.add(send)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text") or ""
                if text.startswith("go"):
                    for seq in range(int(text.split()[1])):
                        frame = FRAME % seq
                        for target in list(sends):
                            await target({"type": "websocket.send", "text": frame})
        finally:
            sends.discard(send)

    return app


def serve_uvicorn(kind: str, port: int) -> None:
    ws = kind.removeprefix("uvicorn-")
    config = uvicorn.Config(
        asgi_app(), host="127.0.0.1", port=port, loop="uvloop", http="httptools", ws=ws, lifespan="off",
        log_level="warning", backlog=4096,
    )  # fmt: skip
    uvicorn.Server(config).run()


async def serve_websockets(port: int) -> None:
    connections: set[ServerConnection] = set()

    async def handler(connection: ServerConnection) -> None:
        connections.add(connection)
        try:
            async for message in connection:
                if isinstance(message, str) and message.startswith("go"):
                    for seq in range(int(message.split()[1])):
                        websockets.broadcast(connections, FRAME % seq)
                        await asyncio.sleep(0)  # let writes drain, as an awaited send would
        finally:
            connections.discard(connection)

    async with websockets_serve(handler, "127.0.0.1", port, backlog=4096, max_queue=None):
        await asyncio.Future()


async def serve_picows(port: int) -> None:
    transports: set[WSTransport] = set()

    class Listener(WSListener):
        def on_ws_connected(self, transport: WSTransport) -> None:
            transports.add(transport)

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            transports.discard(transport)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                text = frame.get_payload_as_ascii_text()
                if text.startswith("go"):
                    for seq in range(int(text.split()[1])):
                        payload = (FRAME % seq).encode()
                        for target in transports:
                            target.send(WSMsgType.TEXT, payload)
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    server = await ws_create_server(lambda _: Listener(), "127.0.0.1", port, backlog=4096)
    await server.serve_forever()


def serve(kind: str, port: int) -> None:
    if kind.startswith("uvicorn-"):
        serve_uvicorn(kind, port)
    elif kind == "websockets":
        uvloop.run(serve_websockets(port))
    else:
        uvloop.run(serve_picows(port))


# --- clients ------------------------------------------------------------------------------------------


async def clients(port: int, count: int, frames: int, hold: bool) -> dict[str, float]:
    expected = frames
    done = asyncio.Event()
    finished = 0

    class Counter(WSListener):
        def __init__(self) -> None:
            self.received = 0

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            nonlocal finished
            if frame.msg_type == WSMsgType.TEXT:
                self.received += 1
                if self.received == expected:
                    finished += 1
                    if finished == count:
                        done.set()

    url = f"ws://127.0.0.1:{port}/"
    opened: list[tuple[WSTransport, WSListener]] = []
    for start in range(0, count, 200):
        batch = await asyncio.gather(*(ws_connect(Counter, url) for _ in range(min(200, count - start))))
        opened.extend(batch)
    if hold:
        print(json.dumps({"connected": len(opened)}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        return {}
    started = time.perf_counter()
    opened[0][0].send(WSMsgType.TEXT, f"go {frames}".encode())
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - started
    for transport, _ in opened:
        transport.disconnect()
    return {"deliveries": count * frames, "seconds": elapsed, "deliveries_per_s": count * frames / elapsed}


# --- orchestration ------------------------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server died")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_clients(server: subprocess.Popen[bytes], port: int, count: int, frames: int) -> dict[str, float]:
    command = [sys.executable, __file__, "clients", str(port), str(count), str(frames)]
    cpu = _cpu_seconds(server.pid)
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600).stdout  # noqa: S603
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    # Includes the handshakes of the round: small next to the deliveries, and the same for every server.
    result["server_cpu_us"] = (_cpu_seconds(server.pid) - cpu) * 1e6 / result["deliveries"]
    return result


def _idle_memory(server: subprocess.Popen[bytes], port: int, count: int) -> float:
    before = _rss_kib(server.pid)
    command = [sys.executable, __file__, "clients", str(port), str(count), "0", "--hold"]
    holder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert holder.stdout is not None
    assert holder.stdin is not None
    json.loads(holder.stdout.readline())
    time.sleep(1.0)  # let the server settle after the last handshake before sampling its RSS
    after = _rss_kib(server.pid)
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(60)
    return (after - before) / count


def measure(kind: str, fanout_conns: int, frames: int, idle_conns: int, rounds: int) -> dict[str, Any]:
    port = _free_port()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    server = subprocess.Popen([sys.executable, __file__, "serve", kind, str(port)], env=env)  # noqa: S603
    try:
        _wait_for_port(port, server)
        runs = [_run_clients(server, port, fanout_conns, frames) for _ in range(rounds)]
        best = max(run["deliveries_per_s"] for run in runs)
        cpu = min(run["server_cpu_us"] for run in runs)
        kib = _idle_memory(server, port, idle_conns)
    finally:
        server.terminate()
        server.wait(10)
    return {
        "server": kind,
        "deliveries_per_s": round(best),
        "server_cpu_us_per_delivery": round(cpu, 2),
        "idle_kib_per_conn": round(kib, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve")
    serve_parser.add_argument("kind", choices=SERVERS)
    serve_parser.add_argument("port", type=int)
    client_parser = sub.add_parser("clients")
    client_parser.add_argument("port", type=int)
    client_parser.add_argument("count", type=int)
    client_parser.add_argument("frames", type=int)
    client_parser.add_argument("--hold", action="store_true")
    parser.add_argument("--servers", nargs="*", default=SERVERS, choices=SERVERS)
    parser.add_argument("--fanout-conns", type=int, default=500)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--idle-conns", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.kind, args.port)
    elif args.command == "clients":
        print(json.dumps(uvloop.run(clients(args.port, args.count, args.frames, args.hold))), flush=True)
    else:
        for kind in args.servers:
            print(json.dumps(measure(kind, args.fanout_conns, args.frames, args.idle_conns, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
