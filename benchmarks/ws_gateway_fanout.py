"""The gateway's own fan-out: deliveries/s from one group's messages to its members' sockets, with and
without `batch` frames (several waiting frames written as one WebSocket message).

    .venv/bin/python -m benchmarks.ws_gateway_fanout [--members 300] [--messages 300]

One `parlour run` process (the real CLI: uvloop, httptools, websockets-sansio, in-memory bus, SQLite).
A group of `--members`; each member holds one WebSocket in a separate client process (picows, counting
`message.new` frames, inside `batch` frames too). The owner sends `--messages` messages as fast as
messaging takes them; deliveries/s = members * messages / (last delivery - first send). Run once with
`?batch=0` and once with `?batch=1`. The gateway process's CPU time per delivery is printed as well.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import uvloop
import websockets
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from benchmarks.ws_connects import PASSWORD, PIDS, base_env, cpu_seconds, start_parlour

MARKER = b'"type":"message.new"'


async def _account(http: httpx.AsyncClient) -> tuple[str, str]:
    username = f"fan{uuid.uuid4().hex[:12]}"
    created = await http.post("/auth/users", json={"username": username, "password": PASSWORD})
    created.raise_for_status()
    tokens = await http.post("/auth/sessions", json={"username": username, "password": PASSWORD})
    tokens.raise_for_status()
    return created.json()["id"], tokens.json()["access_token"]


async def _passes(http: httpx.AsyncClient, tokens: list[str]) -> list[str]:
    async def one(token: str) -> str:
        response = await http.post("/gateway/passes", headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        secret: str = response.json()["pass"]
        return secret

    return list(await asyncio.gather(*(one(token) for token in tokens)))


async def clients(url: str, batch: bool, expect: int) -> None:
    """Client process: one connection per pass from stdin; prints `ready`, then when every connection has
    `expect` messages, the monotonic time of the last one."""
    secrets = json.loads(sys.stdin.readline())
    done = asyncio.Event()
    complete = 0
    last = 0.0

    class Counter(WSListener):
        def __init__(self) -> None:
            self.count = 0

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            nonlocal complete, last
            if frame.msg_type != WSMsgType.TEXT:
                return
            before = self.count
            self.count += frame.get_payload_as_bytes().count(MARKER)
            if before < expect <= self.count:
                complete += 1
                last = time.monotonic()
                if complete == len(secrets):
                    done.set()

    query = "&batch=1" if batch else ""
    ws = url.replace("http://", "ws://")
    for start in range(0, len(secrets), 100):
        chunk = secrets[start : start + 100]
        await asyncio.gather(*(ws_connect(Counter, f"{ws}/gateway/ws?pass={s}{query}") for s in chunk))
    print("ready", flush=True)
    await asyncio.wait_for(done.wait(), 600)
    print(json.dumps({"last": last}), flush=True)


async def _send(url: str, token: str, chat_id: str, messages: int) -> float:
    """Send `messages` to the group, all in flight at once; returns the monotonic time of the first send."""
    async with httpx.AsyncClient(base_url=url) as http:
        (secret,) = await _passes(http, [token])
    async with websockets.connect(f"{url.replace('http://', 'ws://')}/gateway/ws?pass={secret}") as sender:
        await sender.recv()  # hello
        first = time.monotonic()
        for n in range(messages):
            frame = {"type": "message.send", "chat_id": chat_id, "client_id": f"m{n}", "body": f"fan-out {n}"}
            await sender.send(json.dumps(frame))
        acks = 0
        while acks < messages:
            acks += json.loads(await sender.recv())["type"] == "message.ack"
    return first


def _phase(url: str, tokens: list[str], owner_token: str, chat_id: str, messages: int, batch: bool) -> dict[str, Any]:
    secrets = asyncio.run(_passes_for(url, tokens))
    command = [sys.executable, "-m", "benchmarks.ws_gateway_fanout", "clients", url, str(int(batch)), str(messages)]
    client = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert client.stdin is not None
    assert client.stdout is not None
    client.stdin.write(json.dumps(secrets) + "\n")
    client.stdin.flush()
    assert client.stdout.readline().strip() == "ready"
    cpu_before = cpu_seconds(PIDS["run"])
    first = asyncio.run(_send(url, owner_token, chat_id, messages))
    last = json.loads(client.stdout.readline())["last"]
    cpu = cpu_seconds(PIDS["run"]) - cpu_before
    client.wait(60)
    deliveries = len(tokens) * messages
    elapsed = last - first
    return {
        "batch": batch,
        "members": len(tokens),
        "messages": messages,
        "deliveries": deliveries,
        "seconds": round(elapsed, 2),
        "deliveries_per_s": round(deliveries / elapsed),
        "messages_per_s": round(messages / elapsed),
        "process_cpu_us_per_delivery": round(cpu * 1e6 / deliveries, 1),
    }


async def _passes_for(url: str, tokens: list[str]) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        return await _passes(http, tokens)


async def _setup(url: str, members: int) -> tuple[list[str], str, str]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        _, owner_token = await _account(http)
        accounts = []
        for start in range(0, members, 50):
            accounts += await asyncio.gather(*(_account(http) for _ in range(min(50, members - start))))
        body = {"kind": "group", "title": "fan-out", "member_ids": [user_id for user_id, _ in accounts]}
        created = await http.post("/api/chats", json=body, headers={"Authorization": f"Bearer {owner_token}"})
        created.raise_for_status()
        return [token for _, token in accounts], owner_token, created.json()["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    client_parser = sub.add_parser("clients")
    client_parser.add_argument("url")
    client_parser.add_argument("batch", type=int)
    client_parser.add_argument("expect", type=int)
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    if args.command == "clients":
        uvloop.run(clients(args.url, bool(args.batch), args.expect))
        return
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        cwd = Path(folder)
        env = base_env(cwd / "data")
        env.update({"PARLOUR_GATEWAY_FRAMES_PER_SECOND": "100000", "PARLOUR_GATEWAY_FRAME_BURST": "100000"})
        url = start_parlour(stack, ["run"], env, cwd)
        tokens, owner_token, chat_id = asyncio.run(_setup(url, args.members))
        for batch in (False, True):
            print(json.dumps(_phase(url, tokens, owner_token, chat_id, args.messages, batch)), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
