"""The edge every service shares: health, metrics, OpenAPI, request ids, problem documents."""

from __future__ import annotations

from pathlib import Path

import httpx

from parlour.bootstrap import Overrides
from tests.clients import PASSWORD, assert_problem, unique_username
from tests.harness import make_settings, running_parlour
from tests.processes import free_port


async def test_health_reports_live_and_ready_with_each_dependency(http: httpx.AsyncClient) -> None:
    response = await http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["live"] is True
    assert body["ready"] is True
    assert body["checks"]["database"] == "ok"


async def test_metrics_count_requests_by_route_and_status(http: httpx.AsyncClient) -> None:
    await http.get("/auth/users/me")
    text = (await http.get("/metrics")).text
    assert 'parlour_http_requests_total{method="GET",route="/auth/users/me",status="401"}' in text
    assert "parlour_http_request_duration_seconds_bucket" in text


async def test_static_files_and_plain_routes_are_labelled_and_unknown_paths_share_one_label(
    http: httpx.AsyncClient,
) -> None:
    for path in ("/static/app.css", "/static/js/app.js", "/docs", "/no/such/path", "/another/missing"):
        await http.get(path)
    text = (await http.get("/metrics")).text
    assert 'parlour_http_requests_total{method="GET",route="/static/{path}",status="200"} 2.0' in text
    assert 'parlour_http_requests_total{method="GET",route="/docs",status="200"} 1.0' in text
    assert 'parlour_http_requests_total{method="GET",route="unmatched",status="404"} 2.0' in text
    assert "/no/such/path" not in text


async def test_openapi_docs_are_served(http: httpx.AsyncClient) -> None:
    assert (await http.get("/docs")).status_code == 200
    schema = (await http.get("/openapi.json")).json()
    assert "/auth/sessions/refresh" in schema["paths"]


async def test_every_response_carries_a_request_id_and_echoes_a_sane_one(http: httpx.AsyncClient) -> None:
    response = await http.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await http.get("/health", headers={"X-Request-ID": "x" * 500})
    assert generated.headers["x-request-id"] != "x" * 500


async def test_unknown_routes_wrong_methods_and_bad_json_are_problems(http: httpx.AsyncClient) -> None:
    assert_problem(await http.get("/nowhere"), 404, "not_found")
    assert_problem(await http.put("/auth/sessions"), 405, "method_not_allowed")
    bad_json = await http.post("/auth/users", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_problem(bad_json, 422, "invalid_input")
    problem = assert_problem(await http.get("/nowhere"), 404, "not_found")
    assert problem["instance"] == "/nowhere"
    assert problem["request_id"]


async def test_a_database_that_does_not_answer_is_a_503_problem_and_not_ready(tmp_path: Path) -> None:
    closed = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    settings = make_settings(tmp_path, closed)
    async with (
        running_parlour(settings, ["auth"], Overrides(migrate=False)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as client,
    ):
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["database"] != "ok"
        response = await client.post("/auth/users", json={"username": unique_username(), "password": PASSWORD})
        assert_problem(response, 503, "unavailable")
