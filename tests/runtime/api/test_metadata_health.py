"""Health and metadata endpoints over HTTP (dapr-http-api.md §5)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import httpx

from daca.realdapr.build import DAPRD_VERSION
from daca.runtime.net import free_port
from tests.engines import Engine, per_engine
from tests.runtime.api.helpers import (
    JSON,
    app_with_sidecar,
    assert_error,
    client_for,
    sidecar_config,
)
from tests.runtime.harness import write_components

STATE_TYPES = {"memory": "state.in-memory", "sqlite": "state.sqlite", "redis": "state.redis"}
PUBSUB_TYPES = {"memory": "pubsub.in-memory", "sqlite": "pubsub.in-memory", "redis": "pubsub.redis"}
#: The state-store capabilities daprd reports; daca reports those of them it implements.
DAPRD_STATE_CAPABILITIES = {
    "memory": {"ETAG", "TRANSACTIONAL", "TTL", "DELETE_WITH_PREFIX", "KEYS_LIKE", "ACTOR"},
    "sqlite": {"ETAG", "TRANSACTIONAL", "TTL", "KEYS_LIKE", "ACTOR"},
    "redis": {"ETAG", "TRANSACTIONAL", "TTL", "KEYS_LIKE", "ACTOR"},
}
#: ``sqlite`` runs the in-memory pub/sub (``write_components``).
DAPRD_PUBSUB_CAPABILITIES = {
    "memory": {"SUBSCRIBE_WILDCARDS"},
    "sqlite": {"SUBSCRIBE_WILDCARDS"},
    "redis": set(),
}
DACA_VERSION = "daca-" + importlib.metadata.version("daca")
#: daprd's actor runtime with no placement service, which daca reports as it has no actors.
ACTORS_DISABLED = {
    "runtimeStatus": "DISABLED",
    "hostReady": False,
    "placement": "placement: disconnected",
}

DECLARATIVE = """\
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: decl-sub
spec:
  pubsubname: pubsub
  topic: decl
  routes:
    rules:
      - match: 'event.type == "widget"'
        path: /widgets
    default: /decl
  deadLetterTopic: decl-dlq
  metadata:
    rawPayload: "false"
"""
PROGRAMMATIC = {
    "pubsubname": "pubsub",
    "topic": "prog",
    "routes": {"rules": [{"match": 'event.type == "x"', "path": "/x"}], "default": "/prog"},
    "deadLetterTopic": "prog-dlq",
    "metadata": {"k": "v"},
}


async def test_healthz(dapr: httpx.AsyncClient) -> None:
    r = await dapr.get("/v1.0/healthz")
    assert r.status_code == 204, r.text
    assert r.content == b""
    r = await dapr.get("/v1.0/healthz", params={"appid": "myapp"})
    assert r.status_code == 204, r.text
    r = await dapr.get("/v1.0/healthz", params={"appid": "other"})
    assert_error(r, 500, "ERR_HEALTH_APPID_NOT_MATCH", "dapr app-id does not match")
    r = await dapr.get("/v1.0/healthz/outbound")
    assert r.status_code == 204, r.text
    assert r.content == b""


async def test_paths_are_cleaned_and_health_is_get_only(dapr: httpx.AsyncClient) -> None:
    """A trailing ``/`` routes as without it; a HEAD or POST is no health check (daprd's router)."""
    assert (await dapr.get("/v1.0/healthz/")).status_code == 204
    assert (await dapr.get("/v1.0/healthz/outbound/")).status_code == 204
    r = await dapr.get("/v1.0/metadata/")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "myapp"
    for method, path in (("HEAD", "/v1.0/healthz"), ("HEAD", "/v1.0/metadata")):
        r = await dapr.request(method, path)
        assert r.status_code == 404, (method, path, r.status_code)  # an invocation with no app-id
    r = await dapr.post("/v1.0/healthz")
    assert_error(r, 404, "ERR_DIRECT_INVOKE", "failed getting app id")


async def test_healthz_before_the_app_answers(engine: Engine, tmp_path: Path) -> None:
    """Not ready while the app's subscriptions are unknown; outbound is ready regardless."""
    resources = write_components(tmp_path / "components", "memory")
    silent_port = free_port()  # nothing listens: GET /dapr/subscribe keeps failing
    config = sidecar_config(tmp_path, resources, app_port=silent_port)
    async with engine.sidecar(config, wait_ready=False) as sidecar, client_for(sidecar) as dapr:
        r = await dapr.get("/v1.0/healthz")
        assert_error(r, 500, "ERR_HEALTH_NOT_READY")
        assert r.json()["message"] == "dapr is not ready: [runtime]"
        r = await dapr.get("/v1.0/healthz/outbound")
        assert r.status_code == 204, r.text


async def test_metadata_document(engine: Engine, dapr: httpx.AsyncClient, backend: str) -> None:
    r = await dapr.get("/v1.0/metadata")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == JSON
    document = r.json()
    assert document["id"] == "myapp"
    assert document["runtimeVersion"] == per_engine(engine, daca=DACA_VERSION, daprd=DAPRD_VERSION)
    assert document["extended"] == {"daprRuntimeVersion": document["runtimeVersion"]}
    features = sorted(document.get("enabledFeatures", []))
    daprd_features = ["HotReload", "WorkflowsRemoteActivityReminder"]  # daca has neither
    assert features == per_engine(engine, daca=[], daprd=daprd_features)
    components = {c["name"]: c for c in document["components"]}
    assert set(components) == {"statestore", "pubsub"}
    state, pubsub = components["statestore"], components["pubsub"]
    assert state["type"] == STATE_TYPES[backend]
    assert pubsub["type"] == PUBSUB_TYPES[backend]
    for component in (state, pubsub):
        assert component["version"] == "v1"
        assert component.get("capabilities", ["left out"]), component  # empty: left out
    state_caps, pubsub_caps = set(state["capabilities"]), set(pubsub.get("capabilities", []))
    if engine.name == "daca":  # only what it implements, which daprd's store also has
        assert {"ETAG", "TRANSACTIONAL"} <= state_caps <= DAPRD_STATE_CAPABILITIES[backend]
        assert pubsub_caps <= DAPRD_PUBSUB_CAPABILITIES[backend]
    else:
        assert state_caps == DAPRD_STATE_CAPABILITIES[backend]
        assert pubsub_caps == DAPRD_PUBSUB_CAPABILITIES[backend]
    # empty fields are left out: no app, so no subscriptions; no actors, no HTTP endpoints
    for absent in ("subscriptions", "actors", "httpEndpoints"):
        assert absent not in document, absent
    # no app port: the channel is still described, without a port
    assert document["appConnectionProperties"] == {
        "protocol": "http",
        "channelAddress": "127.0.0.1",
    }
    assert document["actorRuntime"] == ACTORS_DISABLED


async def test_own_answers_carry_no_trace_and_name_their_server(
    engine: Engine, dapr: httpx.AsyncClient
) -> None:
    """daprd's tracing middleware adds a (zero, unsampled) ``traceparent``; daca has none.

    daca's HTTP server (uvicorn) names itself in ``server``; daprd's sends no such header.
    """
    r = await dapr.get("/v1.0/metadata")
    zero = "00-" + "0" * 32 + "-" + "0" * 16 + "-00"
    assert r.headers.get("traceparent") == per_engine(engine, daca=None, daprd=zero)
    assert r.headers.get("server") == per_engine(engine, daca="uvicorn", daprd=None)


async def test_put_metadata_shows_in_extended(dapr: httpx.AsyncClient) -> None:
    r = await dapr.put("/v1.0/metadata/k", content=b"some value")
    assert r.status_code == 204, r.text
    assert r.content == b""
    r = await dapr.put("/v1.0/metadata/other", content=b"2")
    assert r.status_code == 204, r.text
    extended = (await dapr.get("/v1.0/metadata")).json()["extended"]
    assert extended["k"] == "some value"
    assert extended["other"] == "2"
    await dapr.put("/v1.0/metadata/k", content=b"replaced")
    assert (await dapr.get("/v1.0/metadata")).json()["extended"]["k"] == "replaced"


def default_rule(rules: list[dict[str, Any]], path: str) -> None:
    """The default route shows as a last rule with no (or an empty) match."""
    last = rules[-1]
    assert last["path"] == path, rules
    assert last.get("match", "") == "", rules


async def test_metadata_lists_subscriptions_and_app_port(
    engine: Engine, resources: Path, tmp_path: Path
) -> None:
    (resources / "subscription.yaml").write_text(DECLARATIVE)
    async with app_with_sidecar(engine, tmp_path, resources, [PROGRAMMATIC]) as (dapr, app):
        document = (await dapr.get("/v1.0/metadata")).json()
    assert document["appConnectionProperties"] == {
        "port": app.port,
        "protocol": "http",
        "channelAddress": "127.0.0.1",
    }  # no "health": neither engine checks the app's health unless told to
    subscriptions = {s["topic"]: s for s in document["subscriptions"]}
    assert set(subscriptions) == {"decl", "prog"}

    decl = subscriptions["decl"]
    assert decl["type"] == "DECLARATIVE"
    assert decl["pubsubname"] == "pubsub"
    assert decl["deadLetterTopic"] == "decl-dlq"
    assert decl["metadata"] == {"rawPayload": "false"}
    assert decl["rules"][0] == {"match": 'event.type == "widget"', "path": "/widgets"}
    default_rule(decl["rules"], "/decl")
    assert len(decl["rules"]) == 2

    prog = subscriptions["prog"]
    assert prog["type"] == "PROGRAMMATIC"
    assert prog["pubsubname"] == "pubsub"
    assert prog["deadLetterTopic"] == "prog-dlq"
    assert prog["metadata"] == {"k": "v"}
    assert prog["rules"][0] == {"match": 'event.type == "x"', "path": "/x"}
    default_rule(prog["rules"], "/prog")
    assert len(prog["rules"]) == 2


async def test_programmatic_subscription_with_plain_route(
    engine: Engine, resources: Path, tmp_path: Path
) -> None:
    entry = {"pubsubname": "pubsub", "topic": "simple", "route": "/simple"}
    async with app_with_sidecar(engine, tmp_path, resources, [entry]) as (dapr, _):
        document = (await dapr.get("/v1.0/metadata")).json()
    [subscription] = document["subscriptions"]
    assert subscription["type"] == "PROGRAMMATIC"
    assert subscription["topic"] == "simple"
    assert len(subscription["rules"]) == 1
    default_rule(subscription["rules"], "/simple")
