"""The decision rule (parlour/notifications/domain/rule.py), pure: who is told, when, and in what words.
docs/subsystems/notifications.md maps its cases here."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from parlour.notifications.domain.rule import (
    APP_NAME,
    Arrival,
    Circumstances,
    NewMessage,
    Outcome,
    Pending,
    Run,
    Timing,
    arrive,
    decide,
    gather,
    recipients,
    settle,
    topic_of,
    unread,
)

TIMING = Timing(delay=2.0, window=30.0)
AT = datetime(2026, 12, 2, tzinfo=UTC)
NAMES = {"ada": "Ada", "bob": "Bob", "cy": "Cy", "dee": "Dee"}


def message(
    seq: int, sender: str = "ada", *, mentioned: frozenset[str] = frozenset(), kind: str = "group"
) -> NewMessage:
    members = ("ada", "bob", "cy", "dee", "eve")
    return NewMessage("c1", seq, sender, members, mentioned, "direct" if kind == "direct" else "group",
                      None if kind == "direct" else "Team", f"body {seq}")  # fmt: skip


def arrival(seq: int, sender: str = "ada", **options: object) -> Arrival:
    return message(seq, sender, **options).arrival("eve")  # type: ignore[arg-type]


def offline(read_seq: int | None = 0, *, preview: bool = True, muted: bool = False) -> Circumstances:
    return Circumstances("offline", muted, read_seq, preview, NAMES)


def test_the_sender_and_members_who_muted_are_not_told_and_presence_is_left_for_the_due_time() -> None:
    told = recipients(("ada", "bob", "cy", "dee", "eve", "eve"), ("ada",), {"dee"})
    assert told == ["bob", "cy", "eve"], "bob may be online now: decided when due (decide), each member once"


def test_the_first_message_is_due_after_the_grace_and_later_ones_join_it() -> None:
    state = arrive(Pending("c1", "eve"), arrival(5), 100.0, TIMING)
    assert (state.first_seq, state.last_seq, state.count, state.due_at) == (5, 5, 1, 102.0)
    state = arrive(state, arrival(6, "bob"), 101.0, TIMING)
    assert (state.first_seq, state.last_seq, state.count, state.due_at) == (5, 6, 2, 102.0), "due time kept"
    assert state.sender_ids == ("ada", "bob"), "the latest last"
    assert arrive(state, arrival(7, "ada"), 101.0, TIMING).sender_ids == ("bob", "ada")
    assert state.preview == "body 6"


def test_a_repeated_or_older_message_changes_nothing() -> None:
    state = arrive(Pending("c1", "eve"), arrival(5), 100.0, TIMING)
    assert arrive(state, arrival(5), 101.0, TIMING) == state
    assert arrive(state, arrival(4), 101.0, TIMING) == state


def test_after_a_notification_the_next_is_due_no_sooner_than_the_window() -> None:
    state = Pending("c1", "eve", first_seq=1, last_seq=1, last_sent_at=100.0)
    assert arrive(state, arrival(2), 105.0, TIMING).due_at == 130.0
    assert arrive(state, arrival(2), 140.0, TIMING).due_at == 142.0, "window long past: the grace only"


def test_a_due_state_becomes_one_notification_counting_the_unread_messages() -> None:
    state = Pending("c1", "eve")
    for seq, sender in ((3, "ada"), (4, "bob"), (5, "ada")):
        state = arrive(state, arrival(seq, sender), 100.0, TIMING)
    outcome, notification = decide(state, offline(read_seq=2), AT)
    assert outcome is Outcome.SENT
    assert notification is not None
    assert notification.title == "3 new messages from Ada and Bob in Team"
    assert notification.body == "Ada: body 5"
    assert (notification.count, notification.last_seq, notification.urgency) == (3, 5, "normal")
    assert notification.id == "c1:eve:5"
    assert notification.url == "/#/chat/c1"
    assert notification.topic == topic_of("c1")
    assert len(notification.topic) == 32
    assert decide(state, offline(read_seq=4), AT)[1].count == 1  # type: ignore[union-attr]


def test_nothing_is_sent_to_who_is_online_muted_gone_or_has_read_everything() -> None:
    state = arrive(Pending("c1", "eve"), arrival(3), 100.0, TIMING)
    assert decide(state, Circumstances("online", False, 0, True, NAMES), AT) == (Outcome.LOOKING, None)
    assert decide(state, offline(muted=True), AT) == (Outcome.MUTED, None)
    assert decide(state, offline(read_seq=None), AT) == (Outcome.LEFT, None)
    assert decide(state, offline(read_seq=3), AT) == (Outcome.READ, None)
    assert decide(state, Circumstances("away", False, 0, True, NAMES), AT)[0] is Outcome.SENT


def test_a_mention_or_a_direct_chat_is_urgent() -> None:
    mentioned = arrive(Pending("c1", "eve"), arrival(3, mentioned=frozenset({"eve"})), 100.0, TIMING)
    assert decide(mentioned, offline(), AT)[1].urgency == "high"  # type: ignore[union-attr]
    direct = arrive(Pending("c1", "eve"), arrival(3, kind="direct"), 100.0, TIMING)
    notification = decide(direct, offline(), AT)[1]
    assert notification is not None
    assert (notification.urgency, notification.title, notification.body) == ("high", "New message from Ada", "body 3")


def test_with_the_preview_off_neither_the_message_nor_its_sender_shows() -> None:
    group = arrive(Pending("c1", "eve"), arrival(3), 100.0, TIMING)
    notification = decide(group, offline(preview=False), AT)[1]
    assert notification is not None
    assert (notification.title, notification.body) == (APP_NAME, "New message in Team")
    direct = arrive(
        arrive(Pending("c1", "eve"), arrival(3, kind="direct"), 100.0, TIMING), arrival(4, kind="direct"), 100.0, TIMING
    )
    assert decide(direct, offline(preview=False), AT)[1].body == "2 new direct messages"  # type: ignore[union-attr]


def test_many_senders_are_named_two_and_counted_past_that_and_an_unknown_one_is_someone() -> None:
    state = Pending("c1", "eve")
    for seq, sender in enumerate(("ada", "bob", "cy", "dee", "zed"), start=1):
        state = arrive(state, arrival(seq, sender), 100.0, TIMING)
    notification = decide(state, offline(), AT)[1]
    assert notification is not None
    assert notification.title == "5 new messages from Someone, Dee and 3 others in Team", "the latest first"
    assert notification.body == "Someone: body 5"


def test_settling_ends_the_wait_and_a_sent_one_starts_the_window() -> None:
    claimed = arrive(Pending("c1", "eve"), arrival(3), 100.0, TIMING)
    sent = settle(claimed, claimed, Outcome.SENT, 103.0, TIMING)
    assert (sent.due_at, sent.count, sent.last_sent_at, sent.last_seq) == (None, 0, 103.0, 3)
    dropped = settle(claimed, claimed, Outcome.READ, 103.0, TIMING)
    assert (dropped.due_at, dropped.last_sent_at) == (None, None)


def test_messages_that_arrived_during_the_dispatch_wait_for_the_next_window() -> None:
    claimed = arrive(Pending("c1", "eve"), arrival(3), 100.0, TIMING)
    current = arrive(claimed, arrival(4, "bob"), 102.5, TIMING)
    after = settle(claimed, current, Outcome.SENT, 103.0, TIMING)
    assert (after.first_seq, after.last_seq, after.count, after.due_at, after.last_sent_at) == (4, 4, 1, 133.0, 103.0)
    assert unread(after, 3) == 1


USERS = ("ada", "bob", "cy", "eve")
sent = st.tuples(st.integers(min_value=1, max_value=12), st.sampled_from(USERS), st.frozensets(st.sampled_from(USERS)))
earlier = st.builds(
    Pending,
    chat_id=st.just("c1"),
    user_id=st.sampled_from(USERS),
    first_seq=st.integers(min_value=0, max_value=6),
    last_seq=st.integers(min_value=0, max_value=8),
    count=st.integers(min_value=0, max_value=5),
    sender_ids=st.lists(st.sampled_from(USERS), unique=True, max_size=3).map(tuple),
    mentioned=st.booleans(),
    due_at=st.one_of(st.none(), st.floats(min_value=90, max_value=150)),
    last_sent_at=st.one_of(st.none(), st.floats(min_value=50, max_value=100)),
)


@given(pending=earlier, batch=st.lists(sent, min_size=1, max_size=8))
def test_a_run_gathered_at_once_is_what_its_messages_arriving_one_by_one_give(
    pending: Pending, batch: list[tuple[int, str, frozenset[str]]]
) -> None:
    messages = [
        NewMessage("c1", seq, sender, USERS, mentioned, "group", f"Team {seq}", f"body {seq}")
        for seq, sender, mentioned in batch
    ]
    run = Run.of(messages)
    one_by_one = pending
    for message_ in run.messages:  # in seq order, once each (`Run.of`, tested below)
        if message_.sender_id != pending.user_id:
            one_by_one = arrive(one_by_one, message_.arrival(pending.user_id), 100.0, TIMING)
    assert gather(pending, run, 100.0, TIMING) == one_by_one


def test_a_run_is_in_seq_order_once_each_with_its_senders_by_last_message() -> None:
    run = Run.of([message(3, "bob"), message(1, "ada"), message(2, "bob"), message(3, "bob"), message(4, "cy")])
    assert [m.seq for m in run.messages] == [1, 2, 3, 4]
    assert run.senders == ("ada", "bob", "cy")
    later = Run.of([message(1, "bob"), message(2, "ada", mentioned=frozenset({"eve"}))])
    assert later.senders == ("bob", "ada")
    assert later.mentioned == {"eve"}
