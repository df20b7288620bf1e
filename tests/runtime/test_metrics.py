"""The daca sidecar's Prometheus metrics, under daprd's names, on ``--metrics-port``."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daca.runtime.config import SidecarConfig
from tests import prometheus
from tests.prometheus import samples
from tests.runtime.harness import FakeApp, running_app, running_sidecar, write_components


async def test_requests_publishes_and_deliveries_are_counted(tmp_path: Path) -> None:
    outcomes = iter(["RETRY", "SUCCESS"])

    async def answer(request: Request, body: object) -> Response:
        return JSONResponse({"status": next(outcomes, "SUCCESS")})

    subscriptions = [{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]
    app = FakeApp(subscriptions=subscriptions, answer=answer)
    resources = write_components(tmp_path / "components", "memory")
    async with running_app(app):
        config = SidecarConfig(
            app_id="shop", app_port=app.port, http_port=0, resources_paths=(resources,),
            home=tmp_path / "home", metrics_port=0,
        )  # fmt: skip
        async with running_sidecar(config) as sidecar:
            assert sidecar.metrics_port
            base = f"http://127.0.0.1:{sidecar.http_port}"
            async with httpx.AsyncClient(base_url=base) as client:
                published = await client.post("/v1.0/publish/pubsub/orders", json={"n": 1})
                assert published.status_code == 204
                missing = await client.post("/v1.0/publish/nope/orders", json={"n": 2})
                assert missing.status_code == 404
                await app.wait_for(2)  # RETRY, then the redelivery: SUCCESS
                scraped = await client.get(f"http://127.0.0.1:{sidecar.metrics_port}/metrics")
                assert scraped.status_code == 200
                root = await client.get(f"http://127.0.0.1:{sidecar.metrics_port}/")
                assert root.status_code == 200
    text = scraped.text
    assert "# TYPE dapr_http_server_request_count counter" in text
    assert "dapr_http_server_request_count_total" not in text  # daprd's name, no suffix
    assert (
        'dapr_http_server_request_count{app_id="shop",method="POST",path="",status="204"} 1' in text
    )
    found = samples(text)  # the parser reads a counter's samples as ``<name>_total``

    def value(name: str, **labels: str) -> float:
        return prometheus.value(found, name, **labels)

    http = {"app_id": "shop", "method": "POST", "path": ""}
    assert value("dapr_http_server_request_count_total", **http, status="204") == 1
    assert value("dapr_http_server_request_count_total", **http, status="404") == 1
    assert value("dapr_http_server_latency_count", **http, status="204") == 1
    egress = {"app_id": "shop", "component": "pubsub", "namespace": "", "topic": "orders"}
    assert value("dapr_component_pubsub_egress_count_total", **egress, success="true") == 1
    ingress = {"app_id": "shop", "component": "pubsub", "namespace": "", "topic": "orders"}
    for outcome in ("retry", "success"):
        labels = {**ingress, "process_status": outcome, "status": outcome}
        assert value("dapr_component_pubsub_ingress_count_total", **labels) == 1, outcome
        assert value("dapr_component_pubsub_ingress_latencies_count", **labels) == 1


async def test_without_a_metrics_port_nothing_listens(tmp_path: Path) -> None:
    resources = write_components(tmp_path / "components", "memory")
    config = SidecarConfig(
        app_id="quiet", http_port=0, resources_paths=(resources,), home=tmp_path / "home"
    )
    async with running_sidecar(config) as sidecar:
        assert sidecar.metrics_port is None
