"""The chaos run's verdict (each client's state, at least once), its fault plan and its tagged bodies."""

from __future__ import annotations

import pickle

from parlour.bench.faults import KINDS, FaultRecord, plan
from parlour.bench.ledger import DeliveryLedger
from parlour.bench.protocol import body_sent_ns, body_tag, stamp_body

A, B, C = 0, 1, 2


def _group(ledger: DeliveryLedger, chat_id: str = "g1", members: tuple[int, ...] = (A, B, C)) -> str:
    for member in members:
        ledger.member(chat_id, member)
    return chat_id


def _acked(ledger: DeliveryLedger, chat: str, sender: int, seq: int, client_id: str | None = None) -> str:
    client_id = client_id or f"{sender}.{seq}"
    ledger.sent(chat, sender, client_id)
    ledger.acked(chat, sender, client_id, seq)
    return client_id


def _arrive(ledger: DeliveryLedger, chat: str, receiver: int, seq: int, client_id: str) -> None:
    ledger.received(chat, receiver, seq)
    ledger.carried(chat, seq, client_id)


def test_a_redelivery_and_a_held_gap_are_allowed_under_faults_but_not_without() -> None:
    ledger = DeliveryLedger()
    chat = _group(ledger, members=(A, B))
    first, second = _acked(ledger, chat, A, 1), _acked(ledger, chat, A, 2)
    for seq, client_id in ((2, second), (1, first), (1, first)):  # n+1 after n+2, then n again (resume)
        _arrive(ledger, chat, B, seq, client_id)
    chaos = ledger.verdict(at_least_once=True)
    assert chaos.ok, chaos.violations()
    assert (chaos.redelivered, chaos.reordered_arrivals, chaos.delivered, chaos.lost) == (1, 1, 2, 0)
    strict = ledger.verdict()
    assert strict.duplicated == 1
    assert strict.out_of_order == 1


def test_an_acked_message_missing_from_one_members_state_is_lost() -> None:
    ledger = DeliveryLedger()
    chat = _group(ledger)
    client_id = _acked(ledger, chat, A, 1)
    _arrive(ledger, chat, B, 1, client_id)
    verdict = ledger.verdict(at_least_once=True)
    assert verdict.lost == 1
    assert verdict.delivered == 1
    assert verdict.violations() == {"lost": 1}


def test_one_client_id_stored_at_two_seqs_is_a_duplicate_in_every_state() -> None:
    ledger = DeliveryLedger()
    chat = _group(ledger, members=(A, B))
    client_id = _acked(ledger, chat, A, 1)
    ledger.sent(chat, A, "0.other")
    ledger.acked(chat, A, "0.other", 2)
    _arrive(ledger, chat, B, 1, client_id)
    _arrive(ledger, chat, B, 2, client_id)  # the resend became a second message
    assert ledger.verdict(at_least_once=True).duplicated == 1


def test_a_resend_acked_again_with_its_seq_is_fine_and_unacked_is_tolerated() -> None:
    ledger = DeliveryLedger()
    chat = _group(ledger, members=(A, B))
    client_id = _acked(ledger, chat, A, 1)
    ledger.acked(chat, A, client_id, 1)  # the same client_id sent again: the original answer
    ledger.sent(chat, A, "0.never")
    _arrive(ledger, chat, B, 1, client_id)
    verdict = ledger.verdict(at_least_once=True)
    assert verdict.ok, verdict.violations()
    assert (verdict.reacked, verdict.unacked) == (1, 1)
    assert ledger.verdict().violations() == {"duplicated": 1, "unacked": 1}


def test_a_senders_order_contradicted_by_seq_is_out_of_order_and_survives_merging() -> None:
    ledger, other = DeliveryLedger(), DeliveryLedger()
    other.sender_reorders = 1
    other.reconnects = 3
    ledger.merge(pickle.loads(pickle.dumps(other)))  # noqa: S301 - our own bytes, as between processes
    verdict = ledger.verdict(at_least_once=True)
    assert verdict.out_of_order == 1
    assert verdict.reconnects == 3


def test_carried_client_ids_merge_across_processes_and_conflicts_count() -> None:
    ledger, other = DeliveryLedger(), DeliveryLedger()
    chat = _group(ledger, members=(A, B))
    _group(other, members=(A, B))
    client_id = _acked(ledger, chat, A, 1)
    other.carried(chat, 1, "9.9")  # another process saw seq 1 carry another message
    ledger.carried(chat, 1, client_id)
    ledger.merge(other)
    assert ledger.verdict(at_least_once=True).duplicated >= 1


def test_every_fault_kind_comes_the_asked_number_of_times_never_paired_with_itself() -> None:
    for each in (1, 2, 3):
        pairs = plan(each)
        kinds = [kind for pair in pairs for kind in pair if kind]
        assert sorted(kinds) == sorted(KINDS * each)
        assert all(first != second for first, second in pairs)


def test_a_fault_record_says_how_long_it_was_down_and_until_recovery() -> None:
    record = FaultRecord("redis", "redis", killed_at=10.0, restarted_at=13.5, recovered_at=15.25)
    assert record.to_dict()["down_seconds"] == 3.5
    assert record.to_dict()["recovery_seconds"] == 5.25
    assert FaultRecord("gateway", "gateway-0").to_dict()["recovery_seconds"] is None


def test_a_tagged_body_says_which_message_it_is_and_still_its_send_time() -> None:
    body = stamp_body(123, 64, "7.42")
    assert len(body) == 64
    assert body_tag(body) == "7.42"
    assert body_sent_ns(body) == 123
    assert body_tag(stamp_body(123, 64)) == ""
    assert body_tag(stamp_body(123, 1, "7.42")) == "7.42"
