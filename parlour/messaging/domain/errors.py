"""Errors of the messaging service. Codes are stable (docs/errors.md, "## Messaging").

InvalidInput
├── InvalidMessageBody       message_body_invalid     (empty, > 4,000 characters, > 16 KiB encoded)
├── InvalidChatTitle         chat_title_invalid
├── InvalidClientId          client_id_invalid
├── UnknownReaction          reaction_unknown         (an emoji not in the reaction set)
├── InvalidReplyTarget       reply_to_invalid         (`reply_to` names no message of the chat)
├── InvalidCommand           command_invalid          (a bus command that cannot be understood)
├── InvalidCursor            cursor_invalid           (a chat list cursor this service did not issue)
├── UnknownUser              user_unknown             (a member id auth does not know)
├── DirectChatWithSelf       direct_chat_with_self
└── TooManyMembers           too_many_members
Forbidden
├── NotMessageAuthor         message_not_yours        (edit someone else's message)
└── ChatRoleRequired         chat_role_required       (add, remove, rename, delete others', change roles)
NotFound
├── ChatNotFound             chat_not_found           (absent, or the caller is not a member: no oracle)
├── MessageNotFound          message_not_found
└── MemberNotFound           member_not_found
Conflict
├── LastOwnerCannotLeave     last_owner_cannot_leave
├── DirectChatFixed          direct_chat_fixed        (a direct chat's members and title do not change)
├── MessageAlreadyDeleted    message_deleted
└── ClientIdReused           client_id_reused         (the same client_id named another chat)
"""

from __future__ import annotations

from parlour.common.errors import Conflict, Forbidden, InvalidInput, NotFound


class InvalidMessageBody(InvalidInput):
    code = "message_body_invalid"
    default_message = "A message body is 1 to 4,000 characters (not only spaces) and at most 16 KiB encoded."


class InvalidChatTitle(InvalidInput):
    code = "chat_title_invalid"
    default_message = "A chat title is 1 to 128 printable characters."


class InvalidClientId(InvalidInput):
    code = "client_id_invalid"
    default_message = "A client_id is 1 to 64 printable ASCII characters without spaces (a UUID works)."


class UnknownReaction(InvalidInput):
    code = "reaction_unknown"
    default_message = "This reaction is not offered: pick one of the reactions docs/protocol.md lists."


class InvalidReplyTarget(InvalidInput):
    code = "reply_to_invalid"
    default_message = "`reply_to` names no message of this chat: reply to a message of the chat you write in."


class InvalidCommand(InvalidInput):
    code = "command_invalid"
    default_message = "The command is malformed: see docs/protocol.md for the fields each command takes."


class InvalidCursor(InvalidInput):
    code = "cursor_invalid"
    default_message = "The cursor is not one this API gave out: start again without it."


class UnknownUser(InvalidInput):
    code = "user_unknown"
    default_message = "No user has this id: pick members from GET /auth/users?q=."


class DirectChatWithSelf(InvalidInput):
    code = "direct_chat_with_self"
    default_message = "A direct chat is between two different users."


class TooManyMembers(InvalidInput):
    code = "too_many_members"
    default_message = "A group has at most 1,000 members."


class NotMessageAuthor(Forbidden):
    code = "message_not_yours"
    default_message = "Only the author of a message may edit it."


class ChatRoleRequired(Forbidden):
    code = "chat_role_required"
    default_message = "Your role in this chat does not allow this: ask an owner or an admin."


class ChatNotFound(NotFound):
    code = "chat_not_found"
    default_message = "No such chat, or you are not a member of it."


class MessageNotFound(NotFound):
    code = "message_not_found"
    default_message = "No such message in this chat."


class MemberNotFound(NotFound):
    code = "member_not_found"
    default_message = "This user is not a member of the chat."


class LastOwnerCannotLeave(Conflict):
    code = "last_owner_cannot_leave"
    default_message = "The last owner cannot leave or step down: make another member an owner first."


class DirectChatFixed(Conflict):
    code = "direct_chat_fixed"
    default_message = "A direct chat always has its two members and no title: create a group instead."


class MessageAlreadyDeleted(Conflict):
    code = "message_deleted"
    default_message = "This message was deleted and can no longer change."


class ClientIdReused(Conflict):
    code = "client_id_reused"
    default_message = "This client_id was already used for a message in another chat: use a new one per message."
