"""A webhook receiver for the bench: counts the notifications a target sends to its users' webhooks.

Each offline bench user registers `http://127.0.0.1:PORT/hook/<index>`; the receiver answers 204 and
records, per user, the `webhook-id` of every delivery and when it arrived. It runs on a thread of the
coordinator (a stdlib server: a few thousand deliveries a run, off the target's and the clients' cores'
hot paths), so the target's outbound HTTP, signing and retries are what is measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VIOLATIONS = ("offline_not_notified",)  # checks of the result's `correctness` beside the ledger's
MAX_BODY = 64 * 1024


@dataclass
class Deliveries:
    """What arrived, guarded by one lock (the server's threads write, the coordinator reads)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ids_by_user: dict[int, list[str]] = field(default_factory=dict)  # bench user index -> webhook-ids
    arrivals_ns: list[int] = field(default_factory=list)

    def record(self, user: int, webhook_id: str) -> None:
        with self.lock:
            self.ids_by_user.setdefault(user, []).append(webhook_id)
            self.arrivals_ns.append(time.monotonic_ns())

    def notified(self) -> int:
        with self.lock:
            return len(self.ids_by_user)

    def summary(self, expected: list[int]) -> dict[str, float]:
        """Counts and rate: notifications, distinct ones, repeats (same webhook-id), per second, missing users."""
        with self.lock:
            ids = [webhook_id for received in self.ids_by_user.values() for webhook_id in received]
            span = (max(self.arrivals_ns) - min(self.arrivals_ns)) / 1e9 if len(self.arrivals_ns) > 1 else 0.0
            missing = sum(1 for user in expected if user not in self.ids_by_user)
        return {
            "notifications": len(ids),
            "notifications_distinct": len(set(ids)),
            "notifications_per_s": len(ids) / span if span else float(len(ids)),
            "notifications_span_s": span,
            "offline_not_notified": missing,
        }


class _Handler(BaseHTTPRequestHandler):
    deliveries: Deliveries  # set on the subclass each receiver makes
    # Keep-alive, as a webhook receiver in service would: HTTP/1.0 cost a connection per delivery.
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        parts = self.path.strip("/").split("/")
        if length > MAX_BODY or len(parts) != 2 or parts[0] != "hook" or not parts[1].isdigit():
            self.send_error(400)
            return
        self.rfile.read(length)
        self.deliveries.record(int(parts[1]), self.headers.get("webhook-id", ""))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the bench prints figures, not one line per request."""


class _Server(ThreadingHTTPServer):
    # The stdlib's backlog of 5 drops the connects of a burst of deliveries (64 under way at once): their
    # SYNs are retried after 1 s and 3 s, and some attempts time out.
    request_queue_size = 1024
    daemon_threads = True


@contextmanager
def receiver() -> Iterator[tuple[str, Deliveries]]:
    """Listen on a free loopback port; yields (base URL, deliveries) and stops the server after."""
    deliveries = Deliveries()
    handler = type("Handler", (_Handler,), {"deliveries": deliveries})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="bench-webhooks", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", deliveries
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
