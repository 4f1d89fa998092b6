"""`/health` and `/metrics`, served by every process.

`/metrics` answers only to the addresses of `MetricsAccess` (loopback by default) or to a caller with its
bearer token, when one is set; anyone else gets 403 `metrics_forbidden`.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from parlour.common.errors import Forbidden
from parlour.common.metrics import CONTENT_TYPE_LATEST, Metrics

ReadinessCheck = Callable[[], Awaitable[None]]
_CHECK_TIMEOUT = 2.0
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class MetricsForbidden(Forbidden):
    code = "metrics_forbidden"
    default_message = "Metrics are served to the configured addresses or bearer token only (PARLOUR_METRICS_*)."


@dataclass(frozen=True)
class MetricsAccess:
    """Who may read `/metrics`: callers from `networks`, or with the bearer `token` if one is set."""

    networks: tuple[_Network, ...]
    token: str | None = None

    @classmethod
    def of(cls, addresses: Sequence[str], token: str | None) -> MetricsAccess:
        return cls(tuple(ipaddress.ip_network(address, strict=False) for address in addresses), token or None)

    def allows(self, address: str | None, authorization: str | None) -> bool:
        if self.token is not None and authorization is not None:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(credentials.encode(), self.token.encode()):
                return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def operations_router(
    metrics: Metrics, checks: Mapping[str, ReadinessCheck], access: MetricsAccess | None = None
) -> APIRouter:
    """Liveness and readiness (`/health`) and Prometheus metrics (`/metrics`, for `access` only)."""
    access = access or MetricsAccess.of(["127.0.0.0/8", "::1"], None)
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="Liveness, and readiness of every dependency")
    async def health(request: Request) -> JSONResponse:
        results = dict(zip(checks, await asyncio.gather(*(_run(check) for check in checks.values())), strict=True))
        ready = all(result == "ok" for result in results.values())
        body = {"status": "ok" if ready else "degraded", "live": True, "ready": ready, "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        address = request.client.host if request.client else None
        if not access.allows(address, request.headers.get("authorization")):
            raise MetricsForbidden()
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _run(check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check(), _CHECK_TIMEOUT)
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # a failing dependency is a readiness answer, not an error
        return f"failed: {type(exc).__name__}"
    return "ok"
