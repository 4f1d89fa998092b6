"""The auth service's HTTP routes: translation between JSON and the use cases, nothing more."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import BaseModel, Field
from pydantic.config import JsonDict

from parlour.auth.application.handlers import (
    SEARCH_LIMIT_MAX,
    AuthHandlers,
    ChangePassword,
    DeleteAccount,
    LogIn,
    SignUp,
    TokenPair,
)
from parlour.auth.domain.errors import InvalidRefreshToken
from parlour.auth.domain.model import (
    DISPLAY_NAME_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_MAX_LENGTH,
    USERNAME_MIN_LENGTH,
    Session,
    User,
    describe_device,
)
from parlour.common.http.limits import AVATAR_UPLOAD_PATH
from parlour.common.http.security import CurrentPrincipal

_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
_PROBLEM = {"content": {"application/problem+json": {}}, "description": "A problem document (RFC 9457)."}

# The schema states the domain's rules (auth/domain/model.py); the domain enforces them with its own
# codes (`username_invalid`, …). The looser `max_length` is only the parsing bound at the edge.
_DISPLAY_NAME_RULE: JsonDict = {"minLength": 1, "maxLength": DISPLAY_NAME_MAX_LENGTH}
_USERNAME_RULE: JsonDict = {"minLength": USERNAME_MIN_LENGTH, "maxLength": USERNAME_MAX_LENGTH}
_PASSWORD_RULE: JsonDict = {"minLength": PASSWORD_MIN_LENGTH, "maxLength": PASSWORD_MAX_LENGTH}


class SignUpRequest(BaseModel):
    username: str = Field(max_length=64, examples=["ada"], json_schema_extra=_USERNAME_RULE)
    password: str = Field(max_length=1024, json_schema_extra=_PASSWORD_RULE)
    display_name: str | None = Field(default=None, max_length=256, json_schema_extra=_DISPLAY_NAME_RULE)


class LogInRequest(BaseModel):
    username: str = Field(max_length=64, json_schema_extra={"maxLength": USERNAME_MAX_LENGTH})
    password: str = Field(max_length=1024)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=256)


class PasswordChangeRequest(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024, json_schema_extra=_PASSWORD_RULE)


class ProfileRequest(BaseModel):
    display_name: str = Field(max_length=256, json_schema_extra=_DISPLAY_NAME_RULE)


class AccountDeletionRequest(BaseModel):
    password: str = Field(max_length=1024)


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    created_at: datetime
    deleted: bool = Field(default=False, description="The account was deleted: its messages stay, under this name")
    avatar_url: str | None = Field(
        default=None, description="The user's picture (a WebP), versioned: a new picture is a new URL"
    )

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            created_at=user.created_at,
            deleted=user.deleted_at is not None,
            avatar_url=f"/auth/users/{user.id}/avatar?v={user.avatar_etag}" if user.avatar_etag else None,
        )


class UserList(BaseModel):
    items: list[UserOut]


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str | None = Field(description="null when it was set as the `parlour_refresh` cookie")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class SessionOut(BaseModel):
    id: str
    device: str = Field(description="What the session was opened with, from its User-Agent")
    created_at: datetime
    last_used_at: datetime | None = Field(description="The last login or refresh (about every 11 minutes)")
    current: bool = Field(description="The session of the access token that asks")

    @classmethod
    def of(cls, session: Session, current_session_id: str) -> SessionOut:
        return cls(
            id=session.id,
            device=describe_device(session.user_agent),
            created_at=session.created_at,
            last_used_at=session.last_used_at,
            current=session.id == current_session_id,
        )


class SessionList(BaseModel):
    items: list[SessionOut]


# The web client's refresh token (docs/web-client.md, "Tokens"): a cookie script cannot read, sent only to
# the session routes, only by this site, and read only from a request that says so in a header that no
# cross-site form can set (a cross-origin script would need a CORS preflight, which is refused).
REFRESH_COOKIE = "parlour_refresh"
REFRESH_COOKIE_PATH = "/auth/sessions"
COOKIE_MODE_HEADER = "X-Parlour-Refresh"
CookieMode = Annotated[
    Literal["cookie"] | None,
    Header(
        alias=COOKIE_MODE_HEADER,
        description="`cookie`: the refresh token travels as the HttpOnly `parlour_refresh` cookie, not in JSON",
    ),
]


def _answer(pair: TokenPair, cookie_mode: str | None, request: Request, response: Response) -> TokenPairOut:
    if cookie_mode is None:
        return TokenPairOut(
            access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
        )
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=pair.refresh_expires_in,
        path=REFRESH_COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return TokenPairOut(access_token=pair.access_token, refresh_token=None, expires_in=pair.expires_in)


def _forget_cookie(response: Response) -> None:
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, httponly=True, samesite="strict")


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def auth_router(handlers: AuthHandlers, jwks: Any) -> APIRouter:
    """Routes under `/auth`. `jwks` returns the published key set."""
    router = APIRouter(prefix="/auth", tags=["auth"], responses={"default": _PROBLEM})

    @router.post("/users", status_code=status.HTTP_201_CREATED, summary="Sign up")
    async def sign_up(body: SignUpRequest) -> UserOut:
        user = await handlers.sign_up(SignUp(body.username, body.password, body.display_name))
        return UserOut.of(user)

    @router.post("/sessions", summary="Log in: a new session with an access and a refresh token")
    async def log_in(
        body: LogInRequest, request: Request, response: Response, cookie_mode: CookieMode = None
    ) -> TokenPairOut:
        user_agent = request.headers.get("user-agent")
        pair = await handlers.log_in(LogIn(body.username, body.password, _client_address(request), user_agent))
        return _answer(pair, cookie_mode, request, response)

    @router.post(
        "/sessions/refresh",
        summary="Rotate the refresh token (from the body, or the cookie); a reused one revokes the session",
    )
    async def refresh(
        request: Request, response: Response, body: RefreshRequest | None = None, cookie_mode: CookieMode = None
    ) -> TokenPairOut:
        token = body.refresh_token if body is not None else None
        if token is None and cookie_mode is not None:
            token = request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise InvalidRefreshToken()
        return _answer(await handlers.refresh(token), cookie_mode, request, response)

    @router.get("/sessions", summary="My open sessions, newest first")
    async def list_sessions(principal: CurrentPrincipal) -> SessionList:
        sessions = await handlers.sessions(principal.user_id)
        return SessionList(items=[SessionOut.of(session, principal.session_id) for session in sessions])

    @router.delete("/sessions/current", status_code=status.HTTP_204_NO_CONTENT, summary="Log out")
    async def log_out(principal: CurrentPrincipal) -> Response:
        await handlers.log_out(principal.session_id)
        response = Response(status_code=status.HTTP_204_NO_CONTENT)
        _forget_cookie(response)
        return response

    @router.delete("/sessions/others", status_code=status.HTTP_204_NO_CONTENT, summary="End my other sessions")
    async def end_other_sessions(principal: CurrentPrincipal) -> Response:
        await handlers.end_other_sessions(principal.user_id, principal.session_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    # Session ids are UUIDs: the path matches nothing else, so `/sessions/refresh` is never taken for one.
    @router.delete(
        "/sessions/{session_id:uuid}", status_code=status.HTTP_204_NO_CONTENT, summary="End one of my sessions"
    )
    async def end_session(principal: CurrentPrincipal, session_id: uuid.UUID) -> Response:
        await handlers.end_session(principal.user_id, str(session_id))
        response = Response(status_code=status.HTTP_204_NO_CONTENT)
        if str(session_id) == principal.session_id:
            _forget_cookie(response)
        return response

    @router.delete("/sessions", status_code=status.HTTP_204_NO_CONTENT, summary="Log out of every session")
    async def log_out_everywhere(principal: CurrentPrincipal) -> Response:
        await handlers.log_out_everywhere(principal.user_id, principal.session_id)
        response = Response(status_code=status.HTTP_204_NO_CONTENT)
        _forget_cookie(response)
        return response

    @router.get("/users/me", summary="The authenticated user")
    async def me(principal: CurrentPrincipal) -> UserOut:
        return UserOut.of(await handlers.get_user(principal.user_id))

    @router.patch("/users/me", summary="Change my display name")
    async def update_me(principal: CurrentPrincipal, body: ProfileRequest) -> UserOut:
        return UserOut.of(await handlers.rename(principal.user_id, body.display_name))

    @router.put(
        "/users/me/password",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Change my password: my other sessions end, this one stays",
    )
    async def change_password(principal: CurrentPrincipal, body: PasswordChangeRequest, request: Request) -> Response:
        command = ChangePassword(
            principal.user_id,
            principal.session_id,
            body.current_password,
            body.new_password,
            _client_address(request),
        )
        await handlers.change_password(command)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.delete(
        "/users/me",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Delete my account: my messages stay, as from “Deleted user”; my username stays reserved",
    )
    async def delete_me(principal: CurrentPrincipal, body: AccountDeletionRequest, request: Request) -> Response:
        command = DeleteAccount(principal.user_id, principal.session_id, body.password, _client_address(request))
        await handlers.delete_account(command)
        response = Response(status_code=status.HTTP_204_NO_CONTENT)
        _forget_cookie(response)
        return response

    _add_avatar_routes(router, handlers)

    @router.get("/users", summary="Search users by username prefix")
    async def search(
        principal: CurrentPrincipal,
        q: Annotated[str, Query(min_length=1, max_length=32)],
        limit: Annotated[int, Query(ge=1, le=SEARCH_LIMIT_MAX)] = 20,
    ) -> UserList:
        return UserList(items=[UserOut.of(user) for user in await handlers.search_users(q, limit)])

    @router.get("/users/{user_id}", summary="A user by id")
    async def get_user(principal: CurrentPrincipal, user_id: str) -> UserOut:
        return UserOut.of(await handlers.get_user(user_id))

    @router.get("/.well-known/jwks.json", summary="Public signing keys (JWKS)")
    async def jwks_document(response: Response) -> dict[str, Any]:
        response.headers["Cache-Control"] = "public, max-age=60"
        document: dict[str, Any] = jwks()
        return document

    return router


def _add_avatar_routes(router: APIRouter, handlers: AuthHandlers) -> None:
    """My picture (set, remove) and anyone's (read)."""

    @router.put(
        AVATAR_UPLOAD_PATH.removeprefix("/auth"),
        summary="Set my picture: the body is a PNG, JPEG or WebP image of at most 2 MB",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in _IMAGE_TYPES},
            }
        },
    )
    async def set_avatar(principal: CurrentPrincipal, request: Request) -> UserOut:
        return UserOut.of(await handlers.set_avatar(principal.user_id, await request.body()))

    @router.delete(AVATAR_UPLOAD_PATH.removeprefix("/auth"), summary="Remove my picture")
    async def remove_avatar(principal: CurrentPrincipal) -> UserOut:
        return UserOut.of(await handlers.remove_avatar(principal.user_id))

    @router.get(
        # User ids are UUIDs: `/users/me/avatar` (mine, to set or remove) is never taken for one.
        "/users/{user_id:uuid}/avatar",
        summary="A user's picture (public: page images carry no token); `ETag`, cached",
        response_class=Response,
        responses={200: {"content": {"image/webp": {}}}, 304: {"description": "Not modified"}},
    )
    async def avatar(user_id: uuid.UUID, request: Request) -> Response:
        stored = await handlers.avatar(str(user_id))
        etag = f'"{stored.etag}"'
        # The URL names the version (`?v=`): a cache may keep it a long time; a new picture is a new URL.
        headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(stored.image, media_type="image/webp", headers=headers)
