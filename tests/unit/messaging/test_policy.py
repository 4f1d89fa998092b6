"""The policy decision point as a table: who may read, send, react, edit, delete, add, remove, rename,
re-role."""

from __future__ import annotations

import pytest

from parlour.messaging.domain.errors import ChatNotFound, ChatRoleRequired, DirectChatFixed, NotMessageAuthor
from parlour.messaging.domain.model import ChatKind, Role
from parlour.messaging.domain.policy import (
    Verdict,
    enforce,
    may_add,
    may_change_role,
    may_delete,
    may_edit,
    may_react,
    may_read,
    may_remove,
    may_rename,
    may_send,
)

OWNER, ADMIN, MEMBER, NONE = Role.OWNER, Role.ADMIN, Role.MEMBER, None
GROUP, DIRECT = ChatKind.GROUP, ChatKind.DIRECT
ALLOW, HIDDEN, NOT_AUTHOR, ROLE, FIXED = (
    Verdict.ALLOW,
    Verdict.NOT_VISIBLE,
    Verdict.NOT_AUTHOR,
    Verdict.ROLE_REQUIRED,
    Verdict.DIRECT_FIXED,
)


@pytest.mark.parametrize(("actor", "expected"), [(OWNER, ALLOW), (ADMIN, ALLOW), (MEMBER, ALLOW), (NONE, HIDDEN)])
def test_members_read_send_and_react_and_non_members_see_nothing(actor: Role | None, expected: Verdict) -> None:
    assert may_read(actor) is expected
    assert may_send(actor) is expected
    assert may_react(actor) is expected


@pytest.mark.parametrize(
    ("actor", "is_author", "expected"),
    [
        (MEMBER, True, ALLOW),
        (OWNER, True, ALLOW),
        (MEMBER, False, NOT_AUTHOR),
        (ADMIN, False, NOT_AUTHOR),
        (OWNER, False, NOT_AUTHOR),
        (NONE, True, HIDDEN),
        (NONE, False, HIDDEN),
    ],
)
def test_only_the_author_edits(actor: Role | None, is_author: bool, expected: Verdict) -> None:
    assert may_edit(actor, is_author=is_author) is expected


@pytest.mark.parametrize(
    ("actor", "kind", "is_author", "expected"),
    [
        (MEMBER, GROUP, True, ALLOW),
        (MEMBER, GROUP, False, ROLE),
        (ADMIN, GROUP, False, ALLOW),
        (OWNER, GROUP, False, ALLOW),
        (MEMBER, DIRECT, True, ALLOW),
        (MEMBER, DIRECT, False, ROLE),
        (NONE, GROUP, True, HIDDEN),
        (NONE, DIRECT, False, HIDDEN),
    ],
)
def test_the_author_or_a_group_admin_deletes(
    actor: Role | None, kind: ChatKind, is_author: bool, expected: Verdict
) -> None:
    assert may_delete(actor, kind, is_author=is_author) is expected


@pytest.mark.parametrize(
    ("actor", "kind", "new_role", "expected"),
    [
        (OWNER, GROUP, MEMBER, ALLOW),
        (OWNER, GROUP, ADMIN, ALLOW),
        (OWNER, GROUP, OWNER, ALLOW),
        (ADMIN, GROUP, MEMBER, ALLOW),
        (ADMIN, GROUP, ADMIN, ROLE),
        (ADMIN, GROUP, OWNER, ROLE),
        (MEMBER, GROUP, MEMBER, ROLE),
        (NONE, GROUP, MEMBER, HIDDEN),
        (OWNER, DIRECT, MEMBER, FIXED),
        (MEMBER, DIRECT, MEMBER, FIXED),
        (NONE, DIRECT, MEMBER, HIDDEN),
    ],
)
def test_who_adds_members(actor: Role | None, kind: ChatKind, new_role: Role, expected: Verdict) -> None:
    assert may_add(actor, kind, new_role) is expected


@pytest.mark.parametrize(
    ("actor", "kind", "target", "is_self", "expected"),
    [
        (MEMBER, GROUP, MEMBER, True, ALLOW),  # leaving
        (ADMIN, GROUP, ADMIN, True, ALLOW),
        (OWNER, GROUP, OWNER, True, ALLOW),  # allowed by policy; the last-owner rule is the domain's
        (OWNER, GROUP, ADMIN, False, ALLOW),
        (OWNER, GROUP, OWNER, False, ALLOW),
        (ADMIN, GROUP, MEMBER, False, ALLOW),
        (ADMIN, GROUP, ADMIN, False, ROLE),
        (ADMIN, GROUP, OWNER, False, ROLE),
        (MEMBER, GROUP, MEMBER, False, ROLE),
        (NONE, GROUP, MEMBER, False, HIDDEN),
        (MEMBER, DIRECT, MEMBER, True, FIXED),
        (NONE, DIRECT, MEMBER, False, HIDDEN),
    ],
)
def test_who_removes_members(
    actor: Role | None, kind: ChatKind, target: Role, is_self: bool, expected: Verdict
) -> None:
    assert may_remove(actor, kind, target, is_self=is_self) is expected


@pytest.mark.parametrize(
    ("actor", "kind", "rename", "change_role"),
    [
        (OWNER, GROUP, ALLOW, ALLOW),
        (ADMIN, GROUP, ALLOW, ROLE),
        (MEMBER, GROUP, ROLE, ROLE),
        (NONE, GROUP, HIDDEN, HIDDEN),
        (MEMBER, DIRECT, FIXED, FIXED),
        (NONE, DIRECT, HIDDEN, HIDDEN),
    ],
)
def test_who_renames_and_changes_roles(
    actor: Role | None, kind: ChatKind, rename: Verdict, change_role: Verdict
) -> None:
    assert may_rename(actor, kind) is rename
    assert may_change_role(actor, kind) is change_role


@pytest.mark.parametrize(
    ("verdict", "error"),
    [(HIDDEN, ChatNotFound), (NOT_AUTHOR, NotMessageAuthor), (ROLE, ChatRoleRequired), (FIXED, DirectChatFixed)],
)
def test_enforce_turns_each_denial_into_its_error(verdict: Verdict, error: type[Exception]) -> None:
    with pytest.raises(error):
        enforce(verdict)
    enforce(ALLOW)
