"""The policy decision point (PDP): who may do what in a chat. Pure functions of roles and facts.

Each function takes the actor's role (None when the actor is not a member) and returns a `Verdict`;
use cases (the enforcement points) turn a verdict into an error with `enforce`. A non-member always gets
`NOT_VISIBLE`, whatever the action, so a chat they are not in looks exactly like one that does not exist.
"""

from __future__ import annotations

from enum import StrEnum

from parlour.messaging.domain.errors import ChatNotFound, ChatRoleRequired, DirectChatFixed, NotMessageAuthor
from parlour.messaging.domain.model import ChatKind, Role


class Verdict(StrEnum):
    ALLOW = "allow"
    NOT_VISIBLE = "not_visible"  # not a member: 404, never 403
    NOT_AUTHOR = "not_author"
    ROLE_REQUIRED = "role_required"
    DIRECT_FIXED = "direct_fixed"


def may_read(actor: Role | None) -> Verdict:
    """See the chat, its members and its history; mark it read; type in it."""
    return Verdict.NOT_VISIBLE if actor is None else Verdict.ALLOW


def may_send(actor: Role | None) -> Verdict:
    """Post a message: every member may."""
    return may_read(actor)


def may_react(actor: Role | None) -> Verdict:
    """Put a reaction on a message, or take one's own off: every member may."""
    return may_read(actor)


def may_edit(actor: Role | None, *, is_author: bool) -> Verdict:
    """Change a message's body: its author only, whatever their role."""
    if actor is None:
        return Verdict.NOT_VISIBLE
    return Verdict.ALLOW if is_author else Verdict.NOT_AUTHOR


def may_delete(actor: Role | None, kind: ChatKind, *, is_author: bool) -> Verdict:
    """Delete a message: its author, or an admin or owner of a group."""
    if actor is None:
        return Verdict.NOT_VISIBLE
    if is_author or (kind is ChatKind.GROUP and actor.rank >= Role.ADMIN.rank):
        return Verdict.ALLOW
    return Verdict.ROLE_REQUIRED


def may_add(actor: Role | None, kind: ChatKind, new_role: Role) -> Verdict:
    """Add a member to a group: admins add members; owners add anyone, as any role."""
    if actor is None:
        return Verdict.NOT_VISIBLE
    if kind is ChatKind.DIRECT:
        return Verdict.DIRECT_FIXED
    if actor is Role.OWNER or (actor is Role.ADMIN and new_role is Role.MEMBER):
        return Verdict.ALLOW
    return Verdict.ROLE_REQUIRED


def may_remove(actor: Role | None, kind: ChatKind, target: Role, *, is_self: bool) -> Verdict:
    """Remove a member of a group: anyone may leave; owners remove anyone; admins remove plain members."""
    if actor is None:
        return Verdict.NOT_VISIBLE
    if kind is ChatKind.DIRECT:
        return Verdict.DIRECT_FIXED
    if is_self or actor is Role.OWNER or (actor is Role.ADMIN and target is Role.MEMBER):
        return Verdict.ALLOW
    return Verdict.ROLE_REQUIRED


def may_rename(actor: Role | None, kind: ChatKind) -> Verdict:
    """Change a group's title: admins and owners."""
    if actor is None:
        return Verdict.NOT_VISIBLE
    if kind is ChatKind.DIRECT:
        return Verdict.DIRECT_FIXED
    return Verdict.ALLOW if actor.rank >= Role.ADMIN.rank else Verdict.ROLE_REQUIRED


def may_change_role(actor: Role | None, kind: ChatKind) -> Verdict:
    """Promote or demote a member (hand ownership over): owners only."""
    if actor is None:
        return Verdict.NOT_VISIBLE
    if kind is ChatKind.DIRECT:
        return Verdict.DIRECT_FIXED
    return Verdict.ALLOW if actor is Role.OWNER else Verdict.ROLE_REQUIRED


_ERRORS = {
    Verdict.NOT_VISIBLE: ChatNotFound,
    Verdict.NOT_AUTHOR: NotMessageAuthor,
    Verdict.ROLE_REQUIRED: ChatRoleRequired,
    Verdict.DIRECT_FIXED: DirectChatFixed,
}


def enforce(verdict: Verdict) -> None:
    """Raise the error a denying verdict stands for; return on `ALLOW`."""
    if verdict is not Verdict.ALLOW:
        raise _ERRORS[verdict]()
