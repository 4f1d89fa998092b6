"""Bearer authentication for HTTP routes, through the shared `TokenVerifier`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from parlour.common.tokens import InvalidToken, Principal, TokenVerifier

_bearer = HTTPBearer(auto_error=False, description="An access token from `POST /auth/sessions`.")


def token_verifier(request: Request) -> TokenVerifier:
    """The app's verifier, set by the composition root."""
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


async def authenticated(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    verifier: Annotated[TokenVerifier, Depends(token_verifier)],
) -> Principal:
    """The caller's principal; 401 problem when the bearer token is missing or invalid."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidToken("Send an access token as `Authorization: Bearer <token>`.")
    return await verifier.verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(authenticated)]
