"""The messaging service's HTTP routes under `/api`: translation between JSON and the use cases."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from parlour.common.contracts.limits import EMOJI_MAX_CHARACTERS
from parlour.common.http.security import CurrentPrincipal
from parlour.messaging.adapters.schemas import (
    AddMemberRequest,
    ChangeRoleRequest,
    ChatListOut,
    ChatOut,
    ChatSummaryOut,
    CreateChatRequest,
    DirectChatRequest,
    EditRequest,
    HistoryOut,
    MessageOut,
    ReadRequest,
    RenameRequest,
    SendRequest,
    decode_cursor,
    encode_cursor,
)
from parlour.messaging.application.chats import CHAT_LIST_LIMIT_MAX, ChatHandlers
from parlour.messaging.application.messages import HISTORY_LIMIT_MAX, MessageHandlers
from parlour.messaging.application.ports import ChatCursor
from parlour.messaging.application.processor import CommandProcessor
from parlour.messaging.domain.messages import (
    AddMember,
    ChangeRole,
    CreateDirectChat,
    CreateGroup,
    DeleteMessage,
    EditMessage,
    MarkRead,
    OnBehalf,
    ReactToMessage,
    RemoveMember,
    RenameChat,
    SendMessage,
)

_PROBLEM = {"content": {"application/problem+json": {}}, "description": "A problem document (RFC 9457)."}
ChatId = Annotated[str, Path(max_length=64)]
UserId = Annotated[str, Path(max_length=64)]
MessageId = Annotated[str, Path(max_length=64)]
# One emoji, URL-encoded; a value outside the offered set is the domain's `reaction_unknown`.
Emoji = Annotated[str, Path(max_length=EMOJI_MAX_CHARACTERS)]
Seq = Annotated[int | None, Query(ge=0, le=2**53)]


def _bearer(request: Request) -> OnBehalf | None:
    # Already verified by `CurrentPrincipal`; passed on only to ask auth about unknown member ids.
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return OnBehalf(token.strip())


def messaging_router(chats: ChatHandlers, messages: MessageHandlers, processor: CommandProcessor) -> APIRouter:
    """Routes under `/api`: chats, members, history, sending, read cursors."""
    router = APIRouter(prefix="/api", tags=["messaging"], responses={"default": _PROBLEM})

    @router.post(
        "/chats",
        status_code=status.HTTP_201_CREATED,
        summary="Create a group, or get-or-create a DM",
        responses={status.HTTP_200_OK: {"model": ChatOut, "description": "The direct chat existed already."}},
    )
    async def create_chat(
        principal: CurrentPrincipal, body: CreateChatRequest, request: Request, response: Response
    ) -> ChatOut:
        if isinstance(body, DirectChatRequest):
            view, created = await chats.create_direct(
                CreateDirectChat(principal.user_id, body.user_id, _bearer(request))
            )
            if not created:
                response.status_code = status.HTTP_200_OK
            return ChatOut.of(view)
        command = CreateGroup(principal.user_id, body.title, body.member_ids, _bearer(request))
        return ChatOut.of(await chats.create_group(command))

    @router.get("/chats", summary="My chats, most recently active first")
    async def list_chats(
        principal: CurrentPrincipal,
        limit: Annotated[int, Query(ge=1, le=CHAT_LIST_LIMIT_MAX)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> ChatListOut:
        after = decode_cursor(cursor) if cursor else None
        summaries = await chats.list_chats(principal.user_id, limit, after)
        next_cursor = None
        if len(summaries) == limit:
            last = summaries[-1].chat
            next_cursor = encode_cursor(ChatCursor(last.last_activity_at, last.id))
        items = [ChatSummaryOut.of(summary, principal.user_id) for summary in summaries]
        return ChatListOut(items=items, next_cursor=next_cursor)

    @router.get("/chats/{chat_id}", summary="A chat of mine, with its members")
    async def get_chat(principal: CurrentPrincipal, chat_id: ChatId) -> ChatOut:
        return ChatOut.of(await chats.get(principal.user_id, chat_id))

    @router.patch("/chats/{chat_id}", summary="Rename a group")
    async def rename_chat(principal: CurrentPrincipal, chat_id: ChatId, body: RenameRequest) -> ChatOut:
        return ChatOut.of(await chats.rename(RenameChat(principal.user_id, chat_id, body.title)))

    @router.post("/chats/{chat_id}/members", summary="Add a member to a group")
    async def add_member(
        principal: CurrentPrincipal, chat_id: ChatId, body: AddMemberRequest, request: Request
    ) -> ChatOut:
        command = AddMember(principal.user_id, chat_id, body.user_id, body.role, _bearer(request))
        return ChatOut.of(await chats.add_member(command))

    @router.delete(
        "/chats/{chat_id}/members/{user_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Remove a member; remove yourself to leave",
    )
    async def remove_member(principal: CurrentPrincipal, chat_id: ChatId, user_id: UserId) -> Response:
        await chats.remove_member(RemoveMember(principal.user_id, chat_id, user_id))
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.patch("/chats/{chat_id}/members/{user_id}", summary="Change a member's role (owners only)")
    async def change_role(
        principal: CurrentPrincipal, chat_id: ChatId, user_id: UserId, body: ChangeRoleRequest
    ) -> ChatOut:
        return ChatOut.of(await chats.change_role(ChangeRole(principal.user_id, chat_id, user_id, body.role)))

    @router.get("/chats/{chat_id}/messages", summary="History in seq order, paged by after_seq / before_seq")
    async def history(
        principal: CurrentPrincipal,
        chat_id: ChatId,
        after_seq: Seq = None,
        before_seq: Seq = None,
        limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT_MAX)] = 50,
    ) -> HistoryOut:
        page = await messages.history(principal.user_id, chat_id, after=after_seq, before=before_seq, limit=limit)
        return HistoryOut(items=[MessageOut.of(message) for message in page.messages], has_more=page.has_more)

    @router.post("/chats/{chat_id}/messages", status_code=status.HTTP_201_CREATED, summary="Send a message")
    async def send(principal: CurrentPrincipal, chat_id: ChatId, body: SendRequest) -> MessageOut:
        client_id = body.client_id if body.client_id is not None else str(uuid.uuid4())
        command = SendMessage(principal.user_id, chat_id, client_id, body.body, reply_to=body.reply_to)
        message = await processor.execute(command)
        return MessageOut.of(message)

    @router.patch("/chats/{chat_id}/messages/{message_id}", summary="Edit one of my messages")
    async def edit(
        principal: CurrentPrincipal, chat_id: ChatId, message_id: MessageId, body: EditRequest
    ) -> MessageOut:
        command = EditMessage(principal.user_id, chat_id, message_id, body.body)
        return MessageOut.of(await processor.execute(command))

    @router.delete("/chats/{chat_id}/messages/{message_id}", summary="Delete a message (leaves a tombstone)")
    async def delete(principal: CurrentPrincipal, chat_id: ChatId, message_id: MessageId) -> MessageOut:
        return MessageOut.of(await processor.execute(DeleteMessage(principal.user_id, chat_id, message_id)))

    @router.put(
        "/chats/{chat_id}/messages/{message_id}/reactions/{emoji}",
        summary="Put my reaction on a message (again: no change); every member hears `message.reacted`",
    )
    async def react(principal: CurrentPrincipal, chat_id: ChatId, message_id: MessageId, emoji: Emoji) -> MessageOut:
        command = ReactToMessage(principal.user_id, chat_id, message_id, emoji, add=True)
        return MessageOut.of(await processor.execute(command))

    @router.delete("/chats/{chat_id}/messages/{message_id}/reactions/{emoji}", summary="Take my reaction off a message")
    async def unreact(principal: CurrentPrincipal, chat_id: ChatId, message_id: MessageId, emoji: Emoji) -> MessageOut:
        command = ReactToMessage(principal.user_id, chat_id, message_id, emoji, add=False)
        return MessageOut.of(await processor.execute(command))

    @router.post("/chats/{chat_id}/read", status_code=status.HTTP_204_NO_CONTENT, summary="Mark read up to seq")
    async def mark_read(principal: CurrentPrincipal, chat_id: ChatId, body: ReadRequest) -> Response:
        await processor.execute(MarkRead(principal.user_id, chat_id, body.seq))
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
