"""`/health` and `/metrics`, served by every process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from parlour.common.metrics import CONTENT_TYPE_LATEST, Metrics

ReadinessCheck = Callable[[], Awaitable[None]]
_CHECK_TIMEOUT = 2.0


def operations_router(metrics: Metrics, checks: Mapping[str, ReadinessCheck]) -> APIRouter:
    """Liveness and readiness (`/health`) and Prometheus metrics (`/metrics`)."""
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="Liveness, and readiness of every dependency")
    async def health(request: Request) -> JSONResponse:
        results = dict(zip(checks, await asyncio.gather(*(_run(check) for check in checks.values())), strict=True))
        ready = all(result == "ok" for result in results.values())
        body = {"status": "ok" if ready else "degraded", "live": True, "ready": ready, "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
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
