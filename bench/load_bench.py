"""CPU per chat turn, throughput, events absorbed and memory-upkeep LLM calls, under load.

Starts the whole system as the README does (``daca up``: bundled Redis, both daca sidecars, both
services) in a temporary ``DACA_HOME``, with both services pointed at this script's
OpenAI-compatible fake LLM, which answers every call after ``--llm-ms`` (default 50 ms) and
counts the calls by kind (reply or memory upkeep). Three phases, each printed as it ends:

1. **load**: ``--clients`` clients send ``POST /chat/`` back to back for ``--seconds``. Prints
   turns/s, the turn's latency beyond the LLM (median and p95), and the CPU each process of the
   system spent per turn (from ``/proc``, user + system time; the load generator and the fake
   LLM are this process and are not counted). The system's work for a turn includes absorbing
   its event and the upkeep it causes, so the phase ends once the memory service has handled
   every event and has nothing pending.
2. **events**: ``--events`` ``ConversationUpdated`` events for ``--users`` users published
   through the chat's sidecar (16 publishers). Prints events/s absorbed (first publish to the
   last event stored) and CPU per event per process.
3. **steady**: ``--steady-users`` users each send a message every 2-5 s (uniform) for
   ``--steady-seconds``. Prints the upkeep LLM calls per turn, and how far the summary fell
   behind: the most turns one upkeep call covered, and the oldest turn's age when its call began.

    .venv/bin/python bench/load_bench.py [--clients 16] [--seconds 30] [--events 5000]
        [--steady-users 20] [--steady-seconds 120] [--llm-ms 50] [--skip load,events,steady]

The first line gives a calibration: the CPU time of a fixed pure-Python workload in this
process. Figures of runs whose calibrations differ much are not comparable.

The ports of the README (8010, 8001, 3500, 3501, 6379) must be free.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory_quality import CHAT, MEMORY, PUBLISH, System, busy_ports, percentile

from daca.llm.prompts import SUMMARY_MARKER, USER_LINE

TICKS = os.sysconf("SC_CLK_TCK")


# --- the fake LLM -----------------------------------------------------------------------------


@dataclass
class FakeLLM:
    """Chat completions after a fixed delay; upkeep calls are recognised by the memory task's
    marker and answered with the memory object, and each turn they cover is timed."""

    delay: float
    calls: Counter[str] = field(default_factory=Counter)
    sent_at: dict[str, float] = field(default_factory=dict)  # user message -> when it was sent
    batch_sizes: list[int] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        return app

    async def _complete(self, request: web.Request) -> web.Response:
        body = await request.json()
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        upkeep = isinstance(system, str) and system.startswith(SUMMARY_MARKER)
        if upkeep:
            self._time_batch(body["messages"])
        self.calls["upkeep" if upkeep else "reply"] += 1
        await asyncio.sleep(self.delay)
        content = json.dumps({"summary": "The user talks a lot.", "facts": []}) if upkeep else "OK."
        return web.json_response(_completion(content))

    def _time_batch(self, messages: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        text = "\n".join(str(m.get("content", "")) for m in messages if m["role"] == "user")
        said = [line[len(USER_LINE) :] for line in text.splitlines() if line.startswith(USER_LINE)]
        self.batch_sizes.append(len(said))
        sent = [self.sent_at[s] for s in said if s in self.sent_at]
        if sent:
            self.lags.append(now - min(sent))


def _completion(content: str) -> dict[str, Any]:
    return {
        "id": "bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@asynccontextmanager
async def serving(app: web.Application) -> Any:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


# --- CPU of the system's processes ------------------------------------------------------------


def _descendants(root: int) -> Iterator[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    todo = [root]
    while todo:
        pid = todo.pop()
        yield pid
        todo.extend(children.get(pid, []))


def _label(pid: int) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    words = " ".join(a.decode(errors="replace") for a in argv)
    if "redis-server" in words:
        return "redis"
    for name, label in (
        ("daca.chat", "chat app"),
        ("daca.memory", "memory app"),
        ("chat-service", "chat sidecar"),
        ("agent-memory-service", "memory sidecar"),
    ):
        if name in words:
            return label
    return "daca up"


def cpu_seconds(root: int) -> dict[str, float]:
    """User + system CPU seconds of ``root`` and its descendants, by role."""
    totals: Counter[str] = Counter()
    for pid in _descendants(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            label = _label(pid)
        except OSError:
            continue
        totals[label] += (int(fields[11]) + int(fields[12])) / TICKS
    return dict(totals)


def cpu_line(before: dict[str, float], after: dict[str, float], per: int, unit: str) -> str:
    spent = {k: (after.get(k, 0.0) - before.get(k, 0.0)) * 1000 / per for k in after}
    parts = [f"{k} {v:.2f}" for k, v in sorted(spent.items(), key=lambda kv: -kv[1]) if v >= 0.005]
    return f"  CPU ms per {unit}: total {sum(spent.values()):.2f} = " + ", ".join(parts)


# --- phases -----------------------------------------------------------------------------------


def calibration_ms() -> float:
    """CPU ms of a fixed pure-Python workload (JSON round trips of a 100-turn page), best of
    three: this machine's speed varies by up to twice over a day, so figures of two runs compare
    only when their calibrations are close."""
    page = {
        "turns": [
            {"session_id": "s", "turn_id": f"t{n}", "user_message": f"message {n}",
             "assistant_reply": "a reply of a few words " * 4, "timestamp": "2026-01-01T00:00:00"}
            for n in range(100)
        ]
    }  # fmt: skip
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(200):
            json.loads(json.dumps(page))
        best = min(best, time.process_time() - started)
    return best * 1000


async def memory_idle(session: aiohttp.ClientSession, handled: int, timeout: float) -> float:
    """Poll the memory service until it has handled ``handled`` events and has nothing pending;
    returns when that was first seen (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with session.get(f"{MEMORY}/healthz") as answer:
            metrics = (await answer.json())["metrics"]
        if metrics["events_handled"] >= handled and metrics["pending_users"] == 0:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the memory service did not absorb {handled} events in {timeout} s")


async def handled_events(session: aiohttp.ClientSession) -> int:
    async with session.get(f"{MEMORY}/healthz") as answer:
        return int((await answer.json())["metrics"]["events_handled"])


async def chat(session: aiohttp.ClientSession, user: str, text: str, sid: str) -> float:
    body = {"user_id": user, "text": text, "metadata": {"session_id": sid}}
    start = time.perf_counter()
    async with session.post(f"{CHAT}/chat/", json=body) as answer:
        await answer.read()
        if answer.status != 200:
            raise RuntimeError(f"chat answered {answer.status}: {await answer.text()}")
    return time.perf_counter() - start


async def phase_load(
    session: aiohttp.ClientSession, root: int, llm: FakeLLM, clients: int, seconds: float
) -> None:
    handled = await handled_events(session)
    latencies: list[float] = []
    before, started = cpu_seconds(root), time.monotonic()
    upkeep_before = llm.calls["upkeep"]

    async def client(n: int) -> None:
        sid, turn = f"load-{n}-{uuid.uuid4().hex[:6]}", 0
        while time.monotonic() - started < seconds:
            latencies.append(await chat(session, f"load-user-{n}", f"message {turn}", sid))
            turn += 1

    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.monotonic() - started
    turns = len(latencies)
    await memory_idle(session, handled + turns, timeout=300)
    after = cpu_seconds(root)
    beyond = [(s - llm.delay) * 1000 for s in latencies]
    upkeep = llm.calls["upkeep"] - upkeep_before
    print(
        f"load: {clients} clients, {turns} turns in {elapsed:.1f} s = {turns / elapsed:.1f} "
        f"turns/s; latency beyond the LLM p50 {percentile(beyond, 50):.1f} ms, "
        f"p95 {percentile(beyond, 95):.1f} ms; upkeep calls {upkeep} "
        f"({upkeep / turns:.3f} per turn)"
    )
    print(cpu_line(before, after, turns, "turn"))


async def phase_events(session: aiohttp.ClientSession, root: int, events: int, users: int) -> None:
    handled = await handled_events(session)
    sessions = [f"events-{u}-{uuid.uuid4().hex[:6]}" for u in range(users)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(events):
        queue.put_nowait(n)

    async def publisher() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            user = n % users
            event = {
                "event_type": "ConversationUpdated",
                "user_id": f"events-user-{user}",
                "session_id": sessions[user],
                "turn_id": uuid.uuid4().hex,
                "user_message": f"I like topic number {n}.",
                "assistant_reply": "Noted.",
                "timestamp": "2026-01-01T00:00:00Z",
            }
            async with session.post(PUBLISH, json=event) as answer:
                if answer.status != 204:
                    raise RuntimeError(f"publish answered {answer.status}")

    before, started = cpu_seconds(root), time.monotonic()
    await asyncio.gather(*(publisher() for _ in range(16)))
    published = time.monotonic() - started
    while (await handled_events(session)) < handled + events:
        await asyncio.sleep(0.02)
    stored = time.monotonic()
    settled = await memory_idle(session, handled + events, timeout=600)
    after = cpu_seconds(root)
    print(
        f"events: {events} for {users} users, published in {published:.2f} s, absorbed at "
        f"{events / (stored - started):.0f} events/s, summaries settled "
        f"{settled - started:.2f} s after the first publish"
    )
    print(cpu_line(before, after, events, "event"))


async def phase_steady(
    session: aiohttp.ClientSession, llm: FakeLLM, users: int, seconds: float
) -> None:
    handled = await handled_events(session)
    upkeep_before, batches_before = llm.calls["upkeep"], len(llm.batch_sizes)
    lags_before = len(llm.lags)
    turns = 0
    started = time.monotonic()
    rng = random.Random(7)

    async def user(n: int) -> None:
        nonlocal turns
        sid, turn = f"steady-{n}-{uuid.uuid4().hex[:6]}", 0
        await asyncio.sleep(rng.uniform(0, 5))
        while time.monotonic() - started < seconds:
            text = f"steady user {n} says message {turn} {uuid.uuid4().hex[:8]}"
            llm.sent_at[text] = time.monotonic()
            await chat(session, f"steady-user-{n}", text, sid)
            turns += 1
            turn += 1
            await asyncio.sleep(rng.uniform(2, 5))

    await asyncio.gather(*(user(n) for n in range(users)))
    traffic_calls = llm.calls["upkeep"] - upkeep_before
    await memory_idle(session, handled + turns, timeout=600)
    calls = llm.calls["upkeep"] - upkeep_before
    sizes = llm.batch_sizes[batches_before:]
    lags = llm.lags[lags_before:]
    print(
        f"steady: {users} users, one message each every 2-5 s for {seconds:.0f} s: {turns} turns, "
        f"{traffic_calls} upkeep calls during the traffic ({traffic_calls / turns:.3f} per turn), "
        f"{calls} once settled ({calls / turns:.3f} per turn)"
    )
    if sizes and lags:
        print(
            f"  summary behind: at most {max(sizes)} turns per call (mean "
            f"{sum(sizes) / len(sizes):.1f}); oldest turn's age when its call began p50 "
            f"{percentile(lags, 50):.1f} s, max {max(lags):.1f} s"
        )


async def run(args: argparse.Namespace, root: int, llm: FakeLLM) -> None:
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        for n in range(3):  # warm-up: connections, first model call, first summary
            await chat(session, "warmup", f"hello {n}", "warmup-session")
        await memory_idle(session, await handled_events(session), timeout=120)
        if "load" not in args.skip:
            await phase_load(session, root, llm, args.clients, args.seconds)
        if "events" not in args.skip:
            await phase_events(session, root, args.events, args.users)
        if "steady" not in args.skip:
            await phase_steady(session, llm, args.steady_users, args.steady_seconds)


async def main(args: argparse.Namespace) -> None:
    llm = FakeLLM(args.llm_ms / 1000)
    async with serving(llm.app()) as base_url:
        saved = dict(os.environ)
        os.environ.update({"LLM_BASE_URL": base_url, "LLM_MODEL": "bench", "LLM_API_KEY": "x"})
        os.environ.pop("GEMINI_API_KEY", None)
        with tempfile.TemporaryDirectory(prefix="daca-load-") as home:
            system = System(home, Path(home) / "services.log")
            os.environ.clear()
            os.environ.update(saved)
            try:
                with httpx.Client(timeout=60, trust_env=False) as client:
                    await asyncio.to_thread(system.ready, client)
                print(
                    f"daca load benchmark: {os.cpu_count()} cores, Python "
                    f"{sys.version.split()[0]}, fake LLM {args.llm_ms:g} ms per call; "
                    f"calibration {calibration_ms():.1f} ms (a fixed Python workload: "
                    "lower is a faster hour)"
                )
                await run(args, system.process.pid, llm)
            finally:
                system.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--steady-users", type=int, default=20)
    parser.add_argument("--steady-seconds", type=float, default=120.0)
    parser.add_argument("--llm-ms", type=float, default=50.0)
    parser.add_argument("--skip", default="", help="comma-separated phases to skip")
    arguments = parser.parse_args()
    if busy := busy_ports():
        raise SystemExit(f"ports in use: {busy}; stop what runs there first")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(arguments))
