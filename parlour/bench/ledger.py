"""The correctness checker: what was sent, what was acknowledged, what each member received, in which order.

Every scenario feeds one `DeliveryLedger` per worker process; the coordinator merges them and asks for a
`Verdict`. The rules are the product's guarantees (docs/architecture.md, "Guarantees"):

- every sent message is acknowledged, once, and no two messages of a chat share a `seq`;
- `seq` of a chat runs 1, 2, 3 … with no gap (for chats the run created);
- every member other than the sender receives every acknowledged message of the chat (live or on resume):
  none lost, none twice, and in strictly increasing `seq` order.

A sender that also receives its own message (an echo to the sending session) is allowed, but the echo is
checked for duplicates and order like any other arrival.

Under faults (`verdict(at_least_once=True)`, the chaos run) the rules are the web client's, Jepsen-style:
a message is judged by the client's *state* (messages kept by `(chat_id, seq)`), not by the wire.

- acked and delivered / acked and lost (`lost`): every acknowledged message is in every member's state;
- `duplicated`: one message in the state twice: one `client_id` carried at two `seq`s, or acked with two;
- `out_of_order`: a sender's message acknowledged with a lower `seq` than one of its own acknowledged
  before it was sent: every member would show them in the wrong order;
- `unacked`: never acknowledged (the client may send it again, same `client_id`): counted, allowed;
- allowed and counted too: `redelivered` (an arrival of a `seq` the client had: dropped),
  `reordered_arrivals` (n+1 after n+2: the client waits for it), `reacked` (a resend's repeated ack with
  the original `seq`) and `reconnects`.
"""

from __future__ import annotations

from array import array
from dataclasses import asdict, dataclass, field
from typing import Any

Receiver = int  # the bench's index of a logical client (a user), stable across reconnects


@dataclass
class Verdict:
    """Counts of what was checked and of every kind of violation."""

    sent: int = 0
    acked: int = 0
    expected_deliveries: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    unacked: int = 0
    seq_conflicts: int = 0
    seq_gaps: int = 0
    rejected: int = 0
    unexpected_disconnects: int = 0
    # At least once (chaos): counted, not violations.
    redelivered: int = 0
    reordered_arrivals: int = 0
    reacked: int = 0
    reconnects: int = 0
    at_least_once: bool = False

    VIOLATIONS = (
        "lost",
        "duplicated",
        "out_of_order",
        "unacked",
        "seq_conflicts",
        "seq_gaps",
        "rejected",
        "unexpected_disconnects",
    )

    TOLERATED_UNDER_FAULTS = ("unacked", "unexpected_disconnects")

    @property
    def ok(self) -> bool:
        return not self.violations()

    def violations(self) -> dict[str, int]:
        """Every violation count that is not zero."""
        names = [n for n in self.VIOLATIONS if not (self.at_least_once and n in self.TOLERATED_UNDER_FAULTS)]
        return {name: getattr(self, name) for name in names if getattr(self, name)}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class _Chat:
    members: set[Receiver] = field(default_factory=set)
    fresh: bool = True
    acks: dict[int, tuple[Receiver, str]] = field(default_factory=dict)  # seq -> (sender, client_id)
    sent: dict[str, Receiver] = field(default_factory=dict)  # client_id -> sender
    ack_seqs: dict[str, int] = field(default_factory=dict)  # client_id -> seq
    duplicate_acks: int = 0
    conflicts: int = 0
    arrivals: dict[Receiver, array[int]] = field(default_factory=dict)
    carried: dict[int, str] = field(default_factory=dict)  # seq -> client_id its message.new carried
    carried_conflicts: int = 0  # one seq carrying two client ids


class DeliveryLedger:
    """Records one run's sends, acknowledgements and arrivals, and judges them."""

    def __init__(self) -> None:
        self._chats: dict[str, _Chat] = {}
        self.rejected = 0
        self.unexpected_disconnects = 0
        self.reconnects = 0
        self.sender_reorders = 0

    def _chat(self, chat_id: str) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat()
        return chat

    def member(self, chat_id: str, receiver: Receiver, *, fresh: bool = True) -> None:
        """`receiver` must get every message of `chat_id` it did not send itself.

        `fresh` says the chat was created by this run, so its `seq` must start at 1.
        """
        chat = self._chat(chat_id)
        chat.members.add(receiver)
        chat.fresh = chat.fresh and fresh

    def sent(self, chat_id: str, sender: Receiver, client_id: str) -> None:
        self._chat(chat_id).sent[client_id] = sender

    def acked(self, chat_id: str, sender: Receiver, client_id: str, seq: int) -> None:
        chat = self._chat(chat_id)
        chat.sent.setdefault(client_id, sender)
        previous = chat.ack_seqs.get(client_id)
        if previous is not None:
            if previous == seq:
                chat.duplicate_acks += 1
            else:
                chat.conflicts += 1
            return
        chat.ack_seqs[client_id] = seq
        owner = chat.acks.get(seq)
        if owner is not None and owner[1] != client_id:
            chat.conflicts += 1
            return
        chat.acks[seq] = (sender, client_id)

    def received(self, chat_id: str, receiver: Receiver, seq: int) -> None:
        """One arrival of `seq` at `receiver`, in arrival order."""
        arrivals = self._chat(chat_id).arrivals
        stream = arrivals.get(receiver)
        if stream is None:
            stream = arrivals[receiver] = array("q")
        stream.append(seq)

    def carried(self, chat_id: str, seq: int, client_id: str) -> None:
        """`seq` of `chat_id` arrived carrying the message sent as `client_id` (chaos bodies say which)."""
        if not client_id:
            return
        chat = self._chat(chat_id)
        known = chat.carried.setdefault(seq, client_id)
        if known != client_id:
            chat.carried_conflicts += 1

    def merge(self, other: DeliveryLedger) -> None:
        """Fold another process's records into this ledger (arrivals of one receiver come from one process)."""
        self.rejected += other.rejected
        self.unexpected_disconnects += other.unexpected_disconnects
        self.reconnects += other.reconnects
        self.sender_reorders += other.sender_reorders
        for chat_id, theirs in other._chats.items():
            mine = self._chat(chat_id)
            mine.members |= theirs.members
            mine.fresh = mine.fresh and theirs.fresh
            mine.duplicate_acks += theirs.duplicate_acks
            mine.conflicts += theirs.conflicts
            for client_id, sender in theirs.sent.items():
                mine.sent.setdefault(client_id, sender)
            for client_id, seq in theirs.ack_seqs.items():
                self.acked(chat_id, theirs.sent[client_id], client_id, seq)
            for receiver, stream in theirs.arrivals.items():
                mine.arrivals.setdefault(receiver, array("q")).extend(stream)
            mine.carried_conflicts += theirs.carried_conflicts
            for seq, client_id in theirs.carried.items():
                known = mine.carried.setdefault(seq, client_id)
                if known != client_id:
                    mine.carried_conflicts += 1

    def verdict(self, *, at_least_once: bool = False) -> Verdict:
        """Judge everything recorded so far; `at_least_once`: by each client's state, as under faults."""
        verdict = Verdict(
            rejected=self.rejected,
            unexpected_disconnects=self.unexpected_disconnects,
            reconnects=self.reconnects,
            at_least_once=at_least_once,
        )
        for chat in self._chats.values():
            if at_least_once:
                _judge_state(chat, verdict)
            else:
                _judge_chat(chat, verdict)
        verdict.out_of_order += self.sender_reorders if at_least_once else 0
        return verdict


def _judge_chat(chat: _Chat, verdict: Verdict) -> None:
    verdict.sent += len(chat.sent)
    verdict.acked += len(chat.ack_seqs)
    verdict.unacked += len(chat.sent.keys() - chat.ack_seqs.keys())
    verdict.duplicated += chat.duplicate_acks
    verdict.seq_conflicts += chat.conflicts
    seen: set[int] = set(chat.acks)
    for stream in chat.arrivals.values():
        seen.update(stream)
    numbered = {seq for seq in seen if seq >= 1}
    if numbered:
        first = 1 if chat.fresh else min(numbered)
        verdict.seq_gaps += max(numbered) - first + 1 - len(numbered)
    for receiver in chat.members:
        expected = {seq for seq, (sender, _) in chat.acks.items() if sender != receiver}
        _judge_stream(chat.arrivals.get(receiver, array("q")), expected, verdict)


def _judge_stream(stream: array[int], expected: set[int], verdict: Verdict) -> None:
    distinct: set[int] = set()
    highest = 0
    for seq in stream:
        if seq in distinct:
            verdict.duplicated += 1
            continue
        if seq < highest:
            verdict.out_of_order += 1
        highest = max(highest, seq)
        distinct.add(seq)
    verdict.expected_deliveries += len(expected)
    verdict.delivered += len(expected & distinct)
    verdict.lost += len(expected - distinct)


def _judge_state(chat: _Chat, verdict: Verdict) -> None:
    verdict.sent += len(chat.sent)
    verdict.acked += len(chat.ack_seqs)
    verdict.unacked += len(chat.sent.keys() - chat.ack_seqs.keys())
    verdict.reacked += chat.duplicate_acks
    verdict.seq_conflicts += chat.conflicts
    by_client: dict[str, set[int]] = {}
    for seq, client_id in chat.carried.items():
        by_client.setdefault(client_id, set()).add(seq)
    for seq, (_, client_id) in chat.acks.items():
        by_client.setdefault(client_id, set()).add(seq)
    verdict.duplicated += sum(len(seqs) - 1 for seqs in by_client.values()) + chat.carried_conflicts
    seen: set[int] = set(chat.acks)
    for stream in chat.arrivals.values():
        seen.update(stream)
    numbered = {seq for seq in seen if seq >= 1}
    if numbered:
        first = 1 if chat.fresh else min(numbered)
        verdict.seq_gaps += max(numbered) - first + 1 - len(numbered)
    for receiver in chat.members:
        expected = {seq for seq, (sender, _) in chat.acks.items() if sender != receiver}
        state: set[int] = set()
        highest = 0
        for seq in chat.arrivals.get(receiver, array("q")):
            if seq in state:
                verdict.redelivered += 1
                continue
            if seq < highest:
                verdict.reordered_arrivals += 1
            highest = max(highest, seq)
            state.add(seq)
        verdict.expected_deliveries += len(expected)
        verdict.delivered += len(expected & state)
        verdict.lost += len(expected - state)
