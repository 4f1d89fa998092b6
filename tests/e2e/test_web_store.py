"""The web client's Store fed what a real server says: REST answers and WebSocket frames, in the order they came.

The Store reads each source in the one shape docs/protocol.md and the OpenAPI schema give it (`id` in REST,
`message_id` and `chat_id` in frames, `unread_count`, members as `{user_id, role, read_seq}`). This test
captures a conversation from a running Parlour and replays it into `parlour/web/static/js/store.js` under
node (tests/e2e/web_store_replay.mjs), so a field the server does not send, or sends under another name,
shows up as a wrong state here rather than as a blank badge in a browser.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients import Account, new_account
from tests.harness import make_settings, running_parlour
from tests.ws_client import Client, Frame, group_chat

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "parlour" / "web" / "static" / "js" / "store.js"
REPLAY = Path(__file__).with_name("web_store_replay.mjs")
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="needs node (Debian's nodejs) to run the client's modules")


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}")
    async with running_parlour(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


async def _get(http: httpx.AsyncClient, account: Account, path: str) -> Any:
    response = await http.get(path, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _replay(tmp_path: Path, me: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    script = tmp_path / "replay.json"
    script.write_text(json.dumps({"me": me, "steps": steps}))
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(REPLAY), STORE.as_uri(), str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    snapshots: dict[str, Any] = json.loads(done.stdout)
    return snapshots


async def test_the_store_reads_the_chat_list_a_chat_its_history_and_live_frames_as_the_server_sends_them(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice, bob, carol = [await new_account(http, prefix) for prefix in ("alice", "bob", "carol")]
    a, b = await Client.connect(http, alice), await Client.connect(http, bob)
    chat_id = await group_chat(http, alice, [bob, carol], title="plans")
    chat_frame = await a.expect("chat", chat_id=chat_id)
    for body in ("one", "two"):
        await b.send_message(chat_id, body)
    news = await a.messages(chat_id, 2)
    summaries = await _get(http, alice, "/api/chats")
    chat = await _get(http, alice, f"/api/chats/{chat_id}")
    history = await _get(http, alice, f"/api/chats/{chat_id}/messages")

    await b.send({"type": "read", "chat_id": chat_id, "seq": 2})
    read = await a.expect("read", user_id=bob.user_id)
    await a.send_message(chat_id, "three", "alice-1")
    own: list[Frame] = await a.until(lambda frame: frame["type"] == "message.ack")
    if not any(frame["type"] == "message.new" for frame in own):  # usually before the ack, may come after
        own.append(await a.expect("message.new", seq=3))
    edit = {"type": "message.edit", "chat_id": chat_id, "message_id": news[0]["message_id"], "body": "one, edited"}
    await b.send(edit)
    edited = await a.expect("message.edited")
    await b.send({"type": "message.delete", "chat_id": chat_id, "message_id": news[1]["message_id"]})
    deleted = await a.expect("message.deleted")
    again = await Client.connect(http, alice)
    await again.send({"type": "resume", "chats": {chat_id: 1}})
    resumed = await again.until(lambda frame: frame["type"] == "resume.done")
    for client in (a, b, again):
        await client.close()

    frames = [chat_frame, read, *own, edited, deleted, *resumed]
    steps = [
        {"op": "setChats", "data": summaries["items"]},
        {"op": "snapshot", "name": "listed"},
        {"op": "upsertChat", "data": chat},
        {"op": "history", "chatId": chat_id, "data": history},
        {"op": "snapshot", "name": "loaded"},
        {"op": "enqueue", "chatId": chat_id, "body": "three", "clientId": "alice-1"},
        *({"op": "frame", "data": frame} for frame in frames),
        {"op": "snapshot", "name": "live"},
    ]
    state = _replay(tmp_path, await _get(http, alice, "/auth/users/me"), steps)

    (summary,) = summaries["items"]
    listed = state["listed"][chat_id]
    assert (listed["kind"], listed["title"], listed["lastSeq"]) == ("group", "plans", 2)
    assert listed["unread"] == summary["unread_count"] == 2
    assert listed["lastMessage"]["id"] == news[1]["message_id"]
    assert listed["lastMessage"]["body"] == "two"  # the preview of the chat list

    loaded = state["loaded"][chat_id]
    assert loaded["memberIds"] == sorted([alice.user_id, bob.user_id, carol.user_id])
    assert [(m["seq"], m["id"], m["senderId"], m["body"]) for m in loaded["messages"]] == [
        (1, news[0]["message_id"], bob.user_id, "one"),
        (2, news[1]["message_id"], bob.user_id, "two"),
    ]
    assert loaded["messages"][0]["clientId"] == history["items"][0]["client_id"]
    assert loaded["syncedSeq"] == 2

    live = state["live"][chat_id]
    ack = next(frame for frame in own if frame["type"] == "message.ack")
    assert [m["id"] for m in live["messages"]] == [news[0]["message_id"], news[1]["message_id"], ack["message_id"]]
    first, second, third = live["messages"]
    assert (first["body"], first["editedAt"]) == ("one, edited", edited["edited_at"])
    assert second["deleted"] is True
    assert (third["senderId"], third["body"], third["createdAt"]) == (alice.user_id, "three", ack["created_at"])
    assert live["outbox"] == 0  # the ack settled the message typed
    assert live["peerReads"][bob.user_id] == read["seq"] == 2
    assert (live["readSeq"], live["syncedSeq"], live["lastSeq"]) == (3, 3, 3)
