"""The gateway's routes: `POST /gateway/passes` (HTTP) and `GET /gateway/ws` (the WebSocket, raw ASGI)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from starlette.routing import WebSocketRoute

from parlour.common.http.security import CurrentPrincipal
from parlour.gateway.adapters.websocket import GatewayEndpoint
from parlour.gateway.application.passes import IssuePass, PassBook

_PROBLEM = {"content": {"application/problem+json": {}}, "description": "A problem document (RFC 9457)."}


class PassOut(BaseModel):
    pass_: str = Field(alias="pass", serialization_alias="pass", description="Use once, as `?pass=` on /gateway/ws.")
    expires_in: int = Field(description="Seconds until the pass expires.")


def gateway_router(passes: PassBook, endpoint: GatewayEndpoint) -> APIRouter:
    """Routes under `/gateway`."""
    router = APIRouter(prefix="/gateway", tags=["gateway"], responses={"default": _PROBLEM})

    @router.post(
        "/passes",
        status_code=status.HTTP_201_CREATED,
        summary="A one-time pass to open the WebSocket",
        response_model_by_alias=True,
    )
    async def issue_pass(principal: CurrentPrincipal) -> PassOut:
        issued = await passes.issue(IssuePass(principal.user_id, principal.session_id))
        return PassOut.model_validate({"pass": issued.secret, "expires_in": issued.expires_in})

    # A plain Starlette route: the endpoint is an ASGI app, without per-frame framework machinery.
    router.routes.append(WebSocketRoute("/gateway/ws", endpoint, name="gateway_ws"))
    return router
