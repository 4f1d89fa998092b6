"""What an observer hears of presence: the last status reported for each user it watches, and when.

The observer is one more bench user who shares a direct chat with every user it watches, so each of
their changes reaches it as a `presence` frame (docs/protocol.md). A watched user has *settled* once the
observer's last report about them says `online`; presence has settled, since some moment, at the latest
of those reports (or at that moment, for a user whose last report came before it). No I/O here: a
worker feeds frames in, the coordinator reads the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

ONLINE = "online"
VIOLATIONS = ("presence_unsettled",)  # checks of the result's `correctness` beside the ledger's


@dataclass
class PresenceWatch:
    """One observer's view of the users it watches."""

    watched: frozenset[str]
    last: dict[str, tuple[str, int]] = field(default_factory=dict)  # user id -> (status, monotonic ns)
    frame_ns: list[int] = field(default_factory=list)  # arrival of every presence frame the observer got
    reports: int = 0  # entries about watched users, over all those frames

    def feed(self, users: Iterable[tuple[str, str]], now_ns: int) -> int:
        """Record one frame; returns by how much the number of watched users shown online changed."""
        self.frame_ns.append(now_ns)
        change = 0
        for user_id, status in users:
            if user_id not in self.watched:
                continue
            self.reports += 1
            was_online = self.online(user_id)
            self.last[user_id] = (status, now_ns)
            change += (status == ONLINE) - was_online
        return change

    def online(self, user_id: str) -> bool:
        return self.last.get(user_id, ("", 0))[0] == ONLINE

    def shown_online(self) -> int:
        return sum(self.online(user_id) for user_id in self.watched)

    def unsettled(self) -> list[str]:
        """Watched users whose last report is not `online` (or who were never reported)."""
        return sorted(user_id for user_id in self.watched if not self.online(user_id))

    def settled_ns(self, since_ns: int) -> int | None:
        """When the last watched user was last reported online, not before `since_ns`; None if one is not."""
        if self.unsettled():
            return None
        return max([since_ns, *(self.last[user_id][1] for user_id in self.watched)])

    def offline_ns(self) -> int | None:
        """When the last watched user was last reported not online; None if one is online or was never reported."""
        if any(user_id not in self.last or self.online(user_id) for user_id in self.watched):
            return None
        return max(self.last[user_id][1] for user_id in self.watched)

    def late(self, deadline_ns: int) -> list[str]:
        """Watched users not shown online by `deadline_ns`: unsettled, or last reported online after it."""
        late = [user_id for user_id in self.watched if self.online(user_id) and self.last[user_id][1] > deadline_ns]
        return sorted([*self.unsettled(), *late])

    def frames_since(self, since_ns: int) -> int:
        return sum(1 for at in self.frame_ns if at >= since_ns)
