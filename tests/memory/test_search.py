"""Search over a user's past turns: ranking, typos, provenance, and a bounded cost."""

from __future__ import annotations

import httpx
import pytest

from daca.memory.search import SearchDocument, search, within
from daca.memory.userlog import PAGE_SIZE, SEARCH_TURNS
from tests.memory.fake_sidecar import FakeSidecar
from tests.memory.helpers import FakeWriter, conversation, deliver, envelope, running_app, wait_for


def doc(turn: str, said: str, reply: str = "") -> SearchDocument[str]:
    return SearchDocument(said, reply, turn)


@pytest.mark.parametrize(
    ("a", "b", "weight"),
    [("tomorrow", "tomorrow", 1.0), ("tommorrow", "tomorrow", 0.8), ("tomorow", "tomorrow", 0.8),
     ("recieve", "receive", 0.8), ("pack", "pick", 0.0), ("cat", "car", 0.0),
     ("restaurant", "restuarant", 0.8), ("lisbon", "london", 0.0)],
)  # fmt: skip
def test_near_terms_match_at_a_lower_weight(a: str, b: str, weight: float) -> None:
    assert within(a, b) == weight


def test_the_rarer_matching_turn_ranks_first_and_typos_still_find_it() -> None:
    documents = [
        doc("t1", "I need to schedule a coding session."),
        doc("t2", "What time is it?", "It is ten."),
        doc("t3", "Tomorrow we will pack for SF?", "Have a good trip."),
        doc("t4", "Tomorrow is a holiday."),
        doc("t5", "We pack lunch every day."),
    ]
    hits = search(documents, "What will we pack tommorrow?", 3)
    assert [hit.document.source for hit in hits] == ["t3", "t4", "t5"]
    assert hits[0].score > hits[1].score > hits[2].score > 0
    assert search(documents, "quantum chromodynamics", 5) == []
    assert search(documents, "the of and", 5) == []  # stopwords only


def test_the_users_words_count_more_than_the_reply() -> None:
    documents = [doc("said", "I love jazz."), doc("replied", "Hello.", "I love jazz too.")]
    assert [hit.document.source for hit in search(documents, "jazz", 2)] == ["said", "replied"]


async def test_the_route_finds_turns_of_every_session_with_provenance(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    async with running_app(sidecar, writer) as client:
        for n, (session, text) in enumerate(
            [("s1", "My sister lives in Porto."), ("s2", "I bought a red bicycle.")]
        ):
            event = conversation(session=session, turn=f"t{n}", text=text)
            assert await deliver(client, envelope(event)) == "SUCCESS"
        # Searchable at once (pending), and still after the summary moved them to the log.
        for _ in range(2):
            answer = await client.get("/memories/alice/search", params={"q": "bicycle", "k": 3})
            assert answer.status_code == 200, answer.text
            [hit] = answer.json()["results"]
            assert hit["kind"] == "turn"
            assert hit["text"] == "user: I bought a red bicycle."
            assert (hit["session_id"], hit["turn_ids"]) == ("s2", ["t1"])
            assert hit["timestamp"] and hit["score"] > 0
            await wait_for(lambda: sidecar.value("log:alice") is not None)
        bad = await client.get("/memories/alice/search", params={"q": "", "k": 3})
        assert bad.status_code == 422


async def test_search_reads_a_bounded_tail_of_a_long_history(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """10,000 logged turns: a search costs the same two state reads and sees the newest 1000."""
    total = 10_000
    sidecar.put("log:bob", {"count": total, "page_size": PAGE_SIZE})
    for page in range(total // PAGE_SIZE):
        turns = [
            {"session_id": f"s{n // 50}", "turn_id": f"t{n}", "user_message": f"note {n}",
             "assistant_reply": "ok", "timestamp": "2026-01-01T00:00:00+00:00"}
            for n in range(page * PAGE_SIZE, (page + 1) * PAGE_SIZE)
        ]  # fmt: skip
        sidecar.put(f"log:bob:page:{page}", {"turns": turns})
    async with running_app(sidecar, writer) as client:
        before = sidecar.requests
        answer = await client.get("/memories/bob/search", params={"q": "note", "k": 50})
        reads = sidecar.requests - before
    hits = answer.json()["results"]
    assert reads == 2  # log head with pending, then the tail pages in one bulk read
    numbers = {int(hit["turn_ids"][0][1:]) for hit in hits}
    assert min(numbers) >= total - SEARCH_TURNS
    assert len(hits) == 50


WORDS = ["apple", "banana", "cherry"]


def _seed_log(sidecar: FakeSidecar, user: str, turns: int, log_id: str | None) -> None:
    """``turns`` logged turns, those of page n saying ``WORDS[n]``."""
    head: dict[str, object] = {"count": turns, "page_size": PAGE_SIZE}
    if log_id is not None:
        head["log_id"] = log_id
    sidecar.put(f"log:{user}", head)
    for page in range((turns + PAGE_SIZE - 1) // PAGE_SIZE):
        numbers = range(page * PAGE_SIZE, min(turns, (page + 1) * PAGE_SIZE))
        sidecar.put(f"log:{user}:page:{page}", {"turns": [
            {"session_id": "s1", "turn_id": f"t{n}", "user_message": f"{WORDS[page]} {log_id}",
             "assistant_reply": "ok", "timestamp": "2026-01-01T00:00:00+00:00"}
            for n in numbers
        ]})  # fmt: skip


async def _pages_found(client: httpx.AsyncClient, user: str) -> list[str]:
    """The words of ``WORDS`` a search finds in the user's log."""
    found = []
    for word in WORDS:
        answer = await client.get(f"/memories/{user}/search", params={"q": word, "k": 5})
        assert answer.status_code == 200, answer.text
        found += [word] if answer.json()["results"] else []
    return found


async def test_a_full_log_page_is_read_once_per_log(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """A page the head counts as full never changes while the log lasts: once read, later
    searches take it from the process. A new log (another ``log_id``, as after a forget) is read
    anew, and a head without an id (written before logs had one) seals nothing."""
    _seed_log(sidecar, "carol", 250, log_id="first")
    _seed_log(sidecar, "dave", 250, log_id=None)
    async with running_app(sidecar, writer) as client:
        assert await _pages_found(client, "carol") == WORDS
        assert await _pages_found(client, "dave") == WORDS
        for user in ("carol", "dave"):
            sidecar.delete(f"log:{user}:page:0")
            sidecar.delete(f"log:{user}:page:2")
        assert await _pages_found(client, "carol") == ["apple", "banana"]  # page 0 was full
        assert await _pages_found(client, "dave") == ["banana"]
        _seed_log(sidecar, "carol", 120, log_id="second")
        assert await _pages_found(client, "carol") == ["apple", "banana"]
        answer = await client.get("/memories/carol/search", params={"q": "apple", "k": 5})
        assert {hit["text"] for hit in answer.json()["results"]} <= {"apple second"}


def test_results_keep_recency_for_equal_scores() -> None:
    documents = [doc("new", "coffee at noon"), doc("old", "coffee at noon")]
    assert [hit.document.source for hit in search(documents, "coffee", 2)] == ["new", "old"]


async def test_the_sessions_route_lists_a_users_sessions_newest_first(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    async with running_app(sidecar, writer) as client:
        said = [
            ("s1", "t1", "2026-12-01T10:00:00+00:00", "  My sister\nlives in Porto. "),
            ("s2", "t2", "2026-12-01T11:00:00+00:00", "I bought a red bicycle. " * 10),
            ("s1", "t3", "2026-12-01T12:00:00+00:00", "She is a doctor."),
            ("x9", "t4", "2026-12-01T13:00:00+00:00", "Someone else's session."),
        ]
        for session, turn, at, text in said:
            user = "bob" if session == "x9" else "alice"
            event = {**conversation(user=user, session=session, turn=turn), "timestamp": at}
            event["user_message"] = text
            assert await deliver(client, envelope(event)) == "SUCCESS"
        # Listed while pending, and the same once the summary moved the turns to the log.
        for _ in range(2):
            answer = await client.get("/memories/alice/sessions")
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["user_id"] == "alice"
            first, second = body["sessions"]
            assert (first["session_id"], first["turns"]) == ("s1", 2)
            assert first["title"] == "My sister lives in Porto."
            assert (first["started_at"], first["last_at"]) == (said[0][2], said[2][2])
            assert (second["session_id"], second["turns"]) == ("s2", 1)
            assert len(second["title"]) == 80 and second["title"].endswith("…")
            await wait_for(lambda: sidecar.value("log:alice") is not None)
        nobody = await client.get("/memories/nobody/sessions")
        assert nobody.json() == {"user_id": "nobody", "sessions": []}


async def test_the_context_route_reads_metadata_recent_entries_and_memories_at_once(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    async with running_app(sidecar, writer) as client:
        await client.post("/memories/alice/initialize", json={"name": "Alice"})
        said = [("s1", "My sister lives in Porto."), ("s2", "I bought a red bicycle."),
                ("s2", "Where does my sister live?")]  # fmt: skip
        for n, (session, text) in enumerate(said):
            event = conversation(session=session, turn=f"t{n}", text=text)
            assert await deliver(client, envelope(event)) == "SUCCESS"
        params = {"session_id": "s2", "limit": "3", "q": "Where does my sister live?", "k": "5"}
        answer = await client.get("/memories/alice/context", params=params)
        assert answer.status_code == 200, answer.text
        context = answer.json()
    assert context["metadata"]["name"] == "Alice"
    # The session's latest 3 entries (each turn is two), oldest first.
    assert [e["content"] for e in context["recent"]] == [
        "assistant: I bought a red bicycle.", "user: Where does my sister live?",
        "assistant: Where does my sister live?",
    ]  # fmt: skip
    # Memories of the other sessions only: this one's turns are in "recent".
    assert [(r["session_id"], r["text"]) for r in context["relevant"]] == [
        ("s1", "user: My sister lives in Porto.")
    ]
    assert context["unavailable"] == []


async def test_the_context_route_names_what_it_could_not_read(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    async with running_app(sidecar, writer) as client:
        sidecar.down = True
        params = {"session_id": "s1", "q": "anything", "k": "5"}
        answer = await client.get("/memories/alice/context", params=params)
        sidecar.down = False
        refused = [
            await client.get("/memories/alice/context", params=bad)
            for bad in ({"q": "x"}, {"session_id": "s1", "k": "51"}, {"session_id": "a b"})
        ]
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "metadata": answer.json()["metadata"], "recent": [], "relevant": [],
        "unavailable": ["metadata", "recent", "relevant"],
    }  # fmt: skip
    assert [r.status_code for r in refused] == [422, 422, 422]


async def summarised_history(
    sidecar: FakeSidecar, writer: FakeWriter, client: httpx.AsyncClient
) -> None:
    """Alice, named, with two sessions of turns all moved to her log, and a fact; nothing pending
    (so no summary runs while a test counts requests)."""
    writer.facts = {"user: My sister lives in Porto.": ["The user's sister lives in Porto."]}
    await client.post("/memories/alice/initialize", json={"name": "Alice"})
    said = [("s1", "My sister lives in Porto."), ("s2", "I bought a red bicycle."),
            ("s2", "I ride it to work."), ("s2", "Where does my sister live?")]  # fmt: skip
    for n, (session, text) in enumerate(said):
        event = conversation(session=session, turn=f"t{n}", text=text)
        assert await deliver(client, envelope(event)) == "SUCCESS"
    await wait_for(lambda: (sidecar.value("log:alice") or {}).get("count") == len(said))
    await wait_for(lambda: sidecar.value("pending:alice") == {"turns": []})
    assert (sidecar.value("facts:alice") or {}).get("facts")
    assert (sidecar.value("log:alice") or {}).get("log_id")  # drawn when the log began


async def test_the_context_route_reads_the_state_in_at_most_two_bulk_calls(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """The heads (user, pending, session, log, facts) in one call, every page in another; a
    context read before asks for its pages with the heads, in one call."""
    async with running_app(sidecar, writer) as client:
        await summarised_history(sidecar, writer, client)
        params = {"session_id": "s2", "limit": "5", "q": "Where does my sister live?", "k": "5"}
        before = sidecar.requests
        answer = await client.get("/memories/alice/context", params=params)
        reads = sidecar.requests - before
        no_search = {"session_id": "s2", "limit": "5", "q": "", "k": "5"}
        before = sidecar.requests
        plain = await client.get("/memories/alice/context", params=no_search)
        plain_reads = sidecar.requests - before
        before = sidecar.requests
        new = await client.get("/memories/alice/context", params={"session_id": "s9"})
        new_reads = sidecar.requests - before
        before = sidecar.requests
        again = await client.get("/memories/alice/context", params=params)
        again_reads = sidecar.requests - before
    assert answer.status_code == 200, answer.text
    context = answer.json()
    assert reads == 2
    assert again_reads == 1 and again.json() == context  # the pages asked for with the heads
    assert context["metadata"]["name"] == "Alice"
    # The 5 latest of the session's 6 entries span both of its pages (the tests' page size is 4).
    assert [e["content"] for e in context["recent"]][:2] == [
        "assistant: I bought a red bicycle.", "user: I ride it to work.",
    ]  # fmt: skip
    assert len(context["recent"]) == 5
    # Other sessions only; the fact and its turn point to the same turn, so one of them is kept.
    assert [(r["session_id"], r["turn_ids"]) for r in context["relevant"]] == [("s1", ["t0"])]
    assert context["unavailable"] == []
    assert plain_reads == 2 and plain.json()["relevant"] == []  # the session pages, no log
    assert new_reads == 1 and new.json()["recent"] == []  # no session head: no page to read
    assert new.json()["metadata"]["name"] == "Alice"


async def test_the_context_route_answers_the_metadata_when_the_page_read_fails(
    sidecar: FakeSidecar, writer: FakeWriter
) -> None:
    """The sidecar goes down right after the first bulk read: the page read fails."""
    async with running_app(sidecar, writer) as client:
        await summarised_history(sidecar, writer, client)
        params = {"session_id": "s2", "q": "Where does my sister live?", "k": "5"}
        before = sidecar.requests
        sidecar.down_after = before + 1
        answer = await client.get("/memories/alice/context", params=params)
        reads = sidecar.requests - before
        sidecar.down_after = None
    assert answer.status_code == 200, answer.text
    assert reads == 2
    context = answer.json()
    assert context["metadata"]["name"] == "Alice"
    assert (context["recent"], context["relevant"]) == ([], [])
    assert context["unavailable"] == ["recent", "relevant"]
