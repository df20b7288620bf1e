"""``/deadletters``: dead-lettered CloudEvents are kept (bounded) and listed."""

from __future__ import annotations

import httpx

from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import FakeWriter, deliver, envelope, memory_settings, running_app


async def test_dead_letters_are_stored_and_listed(client: httpx.AsyncClient) -> None:
    event = envelope({"event_type": "Nope"}, event_id="dead-1") | {"traceid": "00-abc"}
    assert await deliver(client, event, path="/deadletters") == "SUCCESS"
    assert await deliver(client, event, path="/deadletters") == "SUCCESS"
    assert await deliver(client, b"\xffnot json", path="/deadletters") == "SUCCESS"
    listed = (await client.get("/deadletters")).json()
    assert listed["count"] == 2
    assert listed["events"][0] == event
    assert "not json" in listed["events"][1]["raw"]
    assert (await client.get("/healthz")).json()["metrics"]["dead_letters_stored"] == 3


async def test_dead_letters_are_bounded(sidecar: FakeSidecar) -> None:
    async with running_app(sidecar, FakeWriter(), memory_settings(dead_letter_limit=3)) as client:
        for number in range(5):
            await deliver(
                client, envelope({"n": number}, event_id=f"d{number}"), path="/deadletters"
            )
        listed = (await client.get("/deadletters")).json()
    assert [event["id"] for event in listed["events"]] == ["d2", "d3", "d4"]


async def test_dead_letter_with_sidecar_down_is_retry(
    client: httpx.AsyncClient, sidecar: FakeSidecar
) -> None:
    sidecar.down = True
    assert await deliver(client, envelope({}), path="/deadletters") == "RETRY"
    assert (await client.get("/deadletters")).status_code == 503
