"""The correctness checker: lost, duplicated, reordered, unacknowledged and misnumbered messages are counted."""

from __future__ import annotations

import pickle

from parlour.bench.ledger import DeliveryLedger

A, B, C = 0, 1, 2


def _chat(ledger: DeliveryLedger, members: tuple[int, ...] = (A, B), chat_id: str = "c1") -> str:
    for member in members:
        ledger.member(chat_id, member)
    return chat_id


def _send(ledger: DeliveryLedger, chat_id: str, sender: int, seq: int) -> None:
    client_id = f"{sender}.{seq}"
    ledger.sent(chat_id, sender, client_id)
    ledger.acked(chat_id, sender, client_id, seq)


def test_every_message_received_once_in_order_passes() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger)
    for seq in (1, 2, 3):
        _send(ledger, chat, A, seq)
        ledger.received(chat, B, seq)
    verdict = ledger.verdict()
    assert verdict.ok, verdict
    assert (verdict.sent, verdict.acked, verdict.expected_deliveries, verdict.delivered) == (3, 3, 3, 3)


def test_a_missing_arrival_is_lost() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger)
    for seq in (1, 2, 3):
        _send(ledger, chat, A, seq)
    ledger.received(chat, B, 1)
    ledger.received(chat, B, 3)
    verdict = ledger.verdict()
    assert not verdict.ok
    assert verdict.violations() == {"lost": 1}


def test_a_second_arrival_of_the_same_seq_is_a_duplicate() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger)
    _send(ledger, chat, A, 1)
    _send(ledger, chat, A, 2)
    for seq in (1, 2, 2):
        ledger.received(chat, B, seq)
    assert ledger.verdict().violations() == {"duplicated": 1}


def test_an_arrival_below_one_already_seen_is_out_of_order() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger)
    for seq in (1, 2, 3):
        _send(ledger, chat, A, seq)
    for seq in (1, 3, 2):
        ledger.received(chat, B, seq)
    assert ledger.verdict().violations() == {"out_of_order": 1}


def test_a_sent_message_never_acknowledged_is_unacked() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger)
    ledger.sent(chat, A, "a-1")
    assert ledger.verdict().violations() == {"unacked": 1}


def test_two_messages_acknowledged_with_one_seq_conflict() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger)
    ledger.acked(chat, A, "a-1", 1)
    ledger.acked(chat, B, "b-1", 1)
    ledger.received(chat, B, 1)
    assert ledger.verdict().violations()["seq_conflicts"] == 1


def test_one_message_acknowledged_with_two_seqs_conflicts() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger)
    ledger.acked(chat, A, "a-1", 1)
    ledger.acked(chat, A, "a-1", 2)
    ledger.received(chat, B, 1)
    assert ledger.verdict().violations() == {"seq_conflicts": 1}


def test_the_same_ack_twice_is_a_duplicate() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger)
    ledger.acked(chat, A, "a-1", 1)
    ledger.acked(chat, A, "a-1", 1)
    ledger.received(chat, B, 1)
    assert ledger.verdict().violations() == {"duplicated": 1}


def test_a_fresh_chat_whose_seq_skips_a_number_has_a_gap() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger)
    _send(ledger, chat, A, 1)
    _send(ledger, chat, A, 3)
    ledger.received(chat, B, 1)
    ledger.received(chat, B, 3)
    assert ledger.verdict().violations() == {"seq_gaps": 1}


def test_a_fresh_chat_must_start_at_one_but_an_existing_one_may_not() -> None:
    fresh, existing = DeliveryLedger(), DeliveryLedger()
    for ledger, is_fresh in ((fresh, True), (existing, False)):
        ledger.member("c", A, fresh=is_fresh)
        ledger.member("c", B, fresh=is_fresh)
        _send(ledger, "c", A, 5)
        ledger.received("c", B, 5)
    assert fresh.verdict().violations() == {"seq_gaps": 4}
    assert existing.verdict().ok


def test_a_sender_needs_not_receive_its_own_message_but_an_echo_is_checked() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger)
    _send(ledger, chat, A, 1)
    _send(ledger, chat, B, 2)
    ledger.received(chat, B, 1)
    ledger.received(chat, A, 2)
    assert ledger.verdict().ok
    ledger.received(chat, A, 1)  # an echo of A's own message, after seq 2: out of order
    assert ledger.verdict().violations() == {"out_of_order": 1}


def test_every_member_of_a_group_must_receive_every_message() -> None:
    ledger = DeliveryLedger()
    chat = _chat(ledger, (A, B, C))
    _send(ledger, chat, A, 1)
    ledger.received(chat, B, 1)
    verdict = ledger.verdict()
    assert verdict.expected_deliveries == 2
    assert verdict.violations() == {"lost": 1}


def test_ledgers_of_several_processes_merge_into_one_verdict() -> None:
    sender_side, receiver_side, whole = DeliveryLedger(), DeliveryLedger(), DeliveryLedger()
    _chat(whole)
    for seq in (1, 2):
        _send(sender_side, "c1", A, seq)
        receiver_side.received("c1", B, seq)
    receiver_side.unexpected_disconnects = 1
    for part in (sender_side, receiver_side):
        whole.merge(pickle.loads(pickle.dumps(part)))  # noqa: S301 - our own bytes
    verdict = whole.verdict()
    assert verdict.delivered == 2
    assert verdict.violations() == {"unexpected_disconnects": 1}


def test_rejections_and_unexpected_disconnects_fail_the_run() -> None:
    ledger = DeliveryLedger()
    ledger.rejected = 2
    assert ledger.verdict().violations() == {"rejected": 2}
