"""Facts with provenance, supersession, search over facts, and forgetting (fake sidecar)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from daca.llm.memory_update import MemoryUpdate
from daca.llm.offline import OfflineModel
from daca.llm.settings import LLMSettings
from daca.llm.summary import LLMSummaryWriter
from tests.fakes.openai_server import FakeOpenAIServer, text_reply
from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import FakeWriter, conversation, deliver, envelope, running_app, wait_for


def said(text: str, *, turn: str, session: str = "s1", user: str = "alice") -> dict[str, Any]:
    event = conversation(user=user, session=session, turn=turn)
    event.update(
        user_message=text, assistant_reply="Noted.", timestamp=f"2025-04-0{turn[-1]}T15:00:00+00:00"
    )
    return envelope(event)


async def facts(client: httpx.AsyncClient, user: str = "alice", **params: Any) -> list[Any]:
    answer = await client.get(f"/memories/{user}/facts", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.json()["user_id"] == user
    result: list[Any] = answer.json()["facts"]
    return result


async def test_facts_keep_their_provenance_and_a_change_supersedes_the_old_fact(
    sidecar: FakeSidecar,
) -> None:
    writer = LLMSummaryWriter(OfflineModel())
    async with running_app(sidecar, writer) as client:  # type: ignore[arg-type]
        assert (
            await deliver(client, said("I live in Lisbon. What time is it?", turn="t1"))
            == "SUCCESS"
        )
        await wait_for(lambda: bool((sidecar.value("facts:alice") or {}).get("facts")))
        [lisbon] = await facts(client)
        assert lisbon["text"] == "I live in Lisbon."
        assert (lisbon["turn_ids"], lisbon["session_id"]) == (["t1"], "s1")
        assert lisbon["timestamp"].startswith("2025-04-01T15:00:00")
        assert lisbon["superseded_by"] is None

        assert (
            await deliver(client, said("I moved to Berlin!", turn="t2", session="s2")) == "SUCCESS"
        )
        await wait_for(lambda: len(sidecar.value("facts:alice")["facts"]) == 2)
        [berlin] = await facts(client)
        assert (berlin["text"], berlin["session_id"], berlin["turn_ids"]) == (
            "I moved to Berlin!",
            "s2",
            ["t2"],
        )
        old, new = await facts(client, history="true")
        assert (old["fact_id"], old["superseded_by"]) == (lisbon["fact_id"], berlin["fact_id"])
        assert new == berlin
        assert old["superseded_at"]

        answer = await client.get("/memories/alice/search", params={"q": "Lisbon or Berlin?"})
        hits = [(hit["kind"], hit["turn_ids"]) for hit in answer.json()["results"]]
        assert hits == [("turn", ["t2"]), ("turn", ["t1"])]  # the facts only repeat the turns
    await writer.aclose()


async def test_the_memory_call_sees_the_known_facts(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    writer.facts = {"I have a cat.": ["The user has a cat."]}
    async with running_app(sidecar, writer) as client:
        assert await deliver(client, said("I have a cat.", turn="t1")) == "SUCCESS"
        await wait_for(lambda: bool((sidecar.value("facts:alice") or {}).get("facts")))
        assert await deliver(client, said("It is sunny.", turn="t2")) == "SUCCESS"
        await wait_for(lambda: len(writer.calls) == 2)
    assert writer.known_facts == [[], [("f1", "The user has a cat.")]]


async def test_one_fact_can_be_deleted(sidecar: FakeSidecar, writer: FakeWriter) -> None:
    writer.facts = {"I have a cat and a dog.": ["The user has a cat.", "The user has a dog."]}
    async with running_app(sidecar, writer) as client:
        assert await deliver(client, said("I have a cat and a dog.", turn="t1")) == "SUCCESS"
        await wait_for(lambda: bool((sidecar.value("facts:alice") or {}).get("facts")))
        cat, dog = await facts(client)
        gone = await client.delete(f"/memories/alice/facts/{cat['fact_id']}")
        assert gone.status_code == 200, gone.text
        assert gone.json() == {"status": "deleted", "user_id": "alice", "fact_id": cat["fact_id"]}
        assert await facts(client) == [dog]
        again = await client.delete(f"/memories/alice/facts/{cat['fact_id']}")
        assert again.status_code == 404
        assert cat["fact_id"] in again.json()["detail"]
        assert (await client.delete("/memories/nobody/facts/f1")).status_code == 404


def user_keys(sidecar: FakeSidecar) -> set[str]:
    return sidecar.keys() - {"deadletters"}


async def test_forgetting_a_user_deletes_every_record_of_theirs_and_nothing_else(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    writer.facts = {"I have a cat.": ["The user has a cat."]}
    async with running_app(sidecar, writer) as client:
        for n in range(1, 8):  # more turns than a history page holds (4 entries)
            session = f"s{n % 3}"
            assert (
                await deliver(client, said("I have a cat.", turn=f"t{n}", session=session))
                == "SUCCESS"
            )
        await wait_for(lambda: sidecar.value("pending:alice") == {"turns": []})
        assert (
            await deliver(client, said("Still here.", turn="t8", session="s9")) == "SUCCESS"
        )  # pending
        assert (
            await deliver(client, said("I am Bob.", turn="t1", session="b1", user="bob"))
            == "SUCCESS"
        )
        await wait_for(lambda: sidecar.value("log:bob") is not None)
        bobs = {key for key in user_keys(sidecar) if "bob" in key or ":b1" in key}
        assert bobs
        before = user_keys(sidecar)
        answer = await client.delete("/memories/alice")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "forgotten" and body["sessions"] == ["s0", "s1", "s2", "s9"]
        assert user_keys(sidecar) == bobs
        assert body["records_deleted"] >= len(before - bobs)
        assert (await client.get("/memories/alice")).json()["user_summary"] is None
        assert (await client.get("/memories/alice/search", params={"q": "cat"})).json() == {
            "results": []
        }
        assert await facts(client) == []
        assert (await client.get("/conversations/s1")).json()["history"] == []
        again = await client.delete("/memories/alice")
        assert again.status_code == 200 and again.json()["sessions"] == []
        assert user_keys(sidecar) == bobs


async def test_a_summary_in_flight_when_the_user_is_forgotten_is_discarded(
    sidecar: FakeSidecar,
) -> None:
    release = asyncio.Event()

    class Held(FakeWriter):
        async def write(self, previous_summary: str | None, *rest: Any) -> MemoryUpdate:
            self.calls.append((previous_summary, []))
            await release.wait()
            return MemoryUpdate(summary="Alice has a cat.")

    writer = Held()
    async with running_app(sidecar, writer) as client:
        assert await deliver(client, said("I have a cat.", turn="t1")) == "SUCCESS"
        await wait_for(lambda: len(writer.calls) == 1)
        assert (await client.delete("/memories/alice")).status_code == 200
        release.set()
        await wait_for(lambda: writer.calls and sidecar.requests > 0)
        for _ in range(50):  # the commit's reads happen right after the release
            await asyncio.sleep(0.01)
    assert user_keys(sidecar) == set()


async def test_facts_from_a_real_model_through_the_openai_compatible_api(
    sidecar: FakeSidecar,
) -> None:
    """The memory service with an LLM (the fake OpenAI-compatible server): the model's JSON
    answer becomes facts with provenance, and its ``supersedes`` marks the old fact."""
    first = {
        "summary": "Alice lives in Lisbon.",
        "facts": [{"text": "Alice lives in Lisbon.", "turns": ["t1"], "supersedes": []}],
    }
    porto_fact = {"text": "Alice lives in Porto.", "turns": ["t1"], "supersedes": ["f1"]}
    second = {"summary": "Alice moved to Porto.", "facts": [porto_fact]}
    with FakeOpenAIServer() as llm:
        llm.enqueue(text_reply(json.dumps(first)), text_reply(json.dumps(second)))
        settings = LLMSettings.model_validate(
            {"llm_base_url": llm.base_url, "llm_model": "fake", "llm_max_retries": 0}
        )
        writer = LLMSummaryWriter.from_settings(settings)
        async with running_app(sidecar, writer) as client:  # type: ignore[arg-type]
            assert await deliver(client, said("Lisbon is home.", turn="t1")) == "SUCCESS"
            await wait_for(lambda: bool((sidecar.value("facts:alice") or {}).get("facts")))
            assert (
                await deliver(client, said("We moved up north.", turn="t2", session="s2"))
                == "SUCCESS"
            )
            await wait_for(lambda: len(sidecar.value("facts:alice")["facts"]) == 2)
            [porto] = await facts(client)
            old, _ = await facts(client, history="true")
            # The current fact is searched (it says what no turn says); the superseded is not.
            answer = await client.get("/memories/alice/search", params={"q": "Lisbon Porto"})
            found = answer.json()
        await writer.aclose()
        second_prompt = json.dumps(llm.requests[1].messages)
    assert (porto["text"], porto["session_id"], porto["turn_ids"]) == (
        "Alice lives in Porto.",
        "s2",
        ["t2"],
    )
    assert (old["text"], old["superseded_by"]) == ("Alice lives in Lisbon.", porto["fact_id"])
    assert "[f1] Alice lives in Lisbon." in second_prompt  # the model saw the known fact
    kinds = [(hit["kind"], hit.get("fact_id")) for hit in found["results"]]
    assert ("fact", "f2") in kinds and ("fact", "f1") not in kinds
    assert sidecar.value("user:alice")["user_summary"] == "Alice moved to Porto."
