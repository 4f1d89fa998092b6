"""The auth service's HTTP routes: translation between JSON and the use cases, nothing more."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field
from pydantic.config import JsonDict

from parlour.auth.application.handlers import SEARCH_LIMIT_MAX, AuthHandlers, LogIn, SignUp, TokenPair
from parlour.auth.domain.model import (
    DISPLAY_NAME_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_MAX_LENGTH,
    USERNAME_MIN_LENGTH,
    User,
)
from parlour.common.http.security import CurrentPrincipal

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


class ProfileRequest(BaseModel):
    display_name: str = Field(max_length=256, json_schema_extra=_DISPLAY_NAME_RULE)


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, username=user.username, display_name=user.display_name, created_at=user.created_at)


class UserList(BaseModel):
    items: list[UserOut]


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> TokenPairOut:
        return cls(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


def auth_router(handlers: AuthHandlers, jwks: Any) -> APIRouter:
    """Routes under `/auth`. `jwks` returns the published key set."""
    router = APIRouter(prefix="/auth", tags=["auth"], responses={"default": _PROBLEM})

    @router.post("/users", status_code=status.HTTP_201_CREATED, summary="Sign up")
    async def sign_up(body: SignUpRequest) -> UserOut:
        user = await handlers.sign_up(SignUp(body.username, body.password, body.display_name))
        return UserOut.of(user)

    @router.post("/sessions", summary="Log in: a new session with an access and a refresh token")
    async def log_in(body: LogInRequest, request: Request) -> TokenPairOut:
        address = request.client.host if request.client else "unknown"
        return TokenPairOut.of(await handlers.log_in(LogIn(body.username, body.password, address)))

    @router.post("/sessions/refresh", summary="Rotate the refresh token; a reused one revokes the session")
    async def refresh(body: RefreshRequest) -> TokenPairOut:
        return TokenPairOut.of(await handlers.refresh(body.refresh_token))

    @router.delete("/sessions/current", status_code=status.HTTP_204_NO_CONTENT, summary="Log out")
    async def log_out(principal: CurrentPrincipal) -> Response:
        await handlers.log_out(principal.session_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.delete("/sessions", status_code=status.HTTP_204_NO_CONTENT, summary="Log out of every session")
    async def log_out_everywhere(principal: CurrentPrincipal) -> Response:
        await handlers.log_out_everywhere(principal.user_id, principal.session_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/users/me", summary="The authenticated user")
    async def me(principal: CurrentPrincipal) -> UserOut:
        return UserOut.of(await handlers.get_user(principal.user_id))

    @router.patch("/users/me", summary="Change my display name")
    async def update_me(principal: CurrentPrincipal, body: ProfileRequest) -> UserOut:
        return UserOut.of(await handlers.rename(principal.user_id, body.display_name))

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
