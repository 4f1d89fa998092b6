"""The chaos run's fault schedule: what is killed or restarted when, and how long the system took to recover.

Faults come in pairs, the second starting `OVERLAP` seconds after the first while it is still down, so
every kind of fault also happens on top of another. Kinds, each its own way of dying:

- `gateway`: SIGKILL of a gateway process (its sockets drop without a close frame), restarted on its port;
- `messaging`: SIGKILL of a messaging worker (mid-batch, commit or publish), restarted;
- `rabbitmq`: SIGKILL of the broker's VM, started again on its mnesia folder (durable queues survive,
  exclusive ones are gone);
- `postgres`: `pg_ctl stop -m immediate` (every backend gone, crash recovery on start), started again;
- `redis`: SIGKILL, started again empty (no persistence).

A fault has *recovered* when what it broke answers again, every client is live again and acknowledgements
flow: the timeline says how long that took from the kill.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from parlour.bench.servers import PrivateServers
from parlour.bench.target import Target

KINDS = ("gateway", "messaging", "rabbitmq", "postgres", "redis")
OVERLAP = 1.5  # seconds between the two faults of a pair
RESTART_TIMEOUT = 120.0
RECOVERY_TIMEOUT = 120.0


@dataclass
class FaultRecord:
    """One fault on the timeline (seconds since the load began)."""

    kind: str
    victim: str
    killed_at: float = 0.0
    restarted_at: float | None = None
    recovered_at: float | None = None
    attempts: int = 0  # starts it took (a process may exit while a dependency is still down)
    error: str = ""

    @property
    def down_seconds(self) -> float | None:
        return None if self.restarted_at is None else round(self.restarted_at - self.killed_at, 2)

    @property
    def recovery_seconds(self) -> float | None:
        return None if self.recovered_at is None else round(self.recovered_at - self.killed_at, 2)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "down_seconds": self.down_seconds, "recovery_seconds": self.recovery_seconds}


def plan(faults_each: int) -> list[tuple[str, str]]:
    """(kind, kind) pairs: every kind `faults_each` times, no pair of one kind, victims alternating."""
    kinds = list(KINDS) * faults_each
    return [(kinds[i], kinds[i + 1]) if i + 1 < len(kinds) else (kinds[i], "") for i in range(0, len(kinds), 2)]


@dataclass
class Schedule:
    """Runs the faults in a thread while the load runs; `healthy()` says whether the system serves again."""

    target: Target
    servers: PrivateServers
    healthy: Callable[[], bool]  # every client live and acks flowing (the coordinator's counters)
    faults_each: int = 2
    spacing: float = 20.0  # seconds from the end of one pair's recovery to the next pair
    down: float = 3.0  # seconds a killed thing stays down
    started: float = 0.0
    records: list[FaultRecord] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _victims: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="chaos-faults", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def timeline(self) -> list[dict[str, Any]]:
        return [record.to_dict() for record in sorted(self.records, key=lambda r: r.killed_at)]

    def _now(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def _run(self) -> None:
        for first, second in plan(self.faults_each):
            time.sleep(self.spacing)
            threads = [threading.Thread(target=self._fault, args=(first,), daemon=True)]
            if second:
                threads.append(threading.Thread(target=self._fault, args=(second, OVERLAP), daemon=True))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

    def _fault(self, kind: str, delay: float = 0.0) -> None:
        time.sleep(delay)
        record = FaultRecord(kind, self._victim(kind), killed_at=self._now())
        with self._lock:
            self.records.append(record)
        try:
            self._kill(kind, record.victim)
            time.sleep(self.down)
            self._revive(kind, record)
            record.restarted_at = self._now()
        except Exception as error:
            record.error = f"{type(error).__name__}: {error}"[:500]
            return
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:
            if self.healthy():
                record.recovered_at = self._now()
                return
            time.sleep(0.1)  # polling the counters, bounded
        record.error = f"not recovered within {RECOVERY_TIMEOUT:.0f} s of the restart"

    def _victim(self, kind: str) -> str:
        if kind not in ("gateway", "messaging"):
            return kind
        with self._lock:
            turn = self._victims.get(kind, 0)
            self._victims[kind] = turn + 1
        count = sum(1 for name in self.target.server_pids if name.startswith(f"{kind}-"))
        return f"{kind}-{turn % count}"

    def _kill(self, kind: str, victim: str) -> None:
        if kind in ("gateway", "messaging"):
            assert self.target.processes is not None
            self.target.processes.kill(victim)
        else:
            self.servers.by_name(kind).kill()

    def _revive(self, kind: str, record: FaultRecord) -> None:
        if kind not in ("gateway", "messaging"):
            record.attempts = 1
            self.servers.by_name(kind).start()
            return
        processes = self.target.processes
        assert processes is not None
        deadline = time.monotonic() + RESTART_TIMEOUT
        while True:  # as a supervisor would: start again until it stays up
            record.attempts += 1
            try:
                process = processes.restart(record.victim)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
                continue
            self.target.server_pids[record.victim] = process.pid
            return
