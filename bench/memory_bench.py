"""Service benchmark: summary LLM calls per event in a burst, and reply-to-history latency.

Run: ``.venv/bin/python bench/memory_bench.py [--burst 200] [--chats 200]``.
It starts the whole system as the README does (``daca up``: bundled Redis, both sidecars, both
services, the offline model) with a temporary ``DACA_HOME``, measures, and stops it. The ports
of the README (8010, 8001, 3500, 3501, 6379) must be free.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import httpx

CHAT, MEMORY, CHAT_SIDECAR = (
    "http://127.0.0.1:8010",
    "http://127.0.0.1:8001",
    "http://127.0.0.1:3500",
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def wait(check: Any, timeout: float = 120.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting")
        time.sleep(interval)


def metrics(client: httpx.Client) -> dict[str, int]:
    answer: dict[str, int] = client.get(f"{MEMORY}/healthz").json()["metrics"]
    return answer


def bench_burst(client: httpx.Client, events: int, users: int) -> None:
    before = metrics(client)
    sessions = [f"burst-{uuid.uuid4().hex[:8]}" for _ in range(users)]
    start = time.perf_counter()
    for n in range(events):
        user = n % users
        event = {
            "event_type": "ConversationUpdated",
            "user_id": f"burst-user-{user}",
            "session_id": sessions[user],
            "turn_id": uuid.uuid4().hex,
            "user_message": f"I like topic number {n}.",
            "assistant_reply": "Noted.",
            "timestamp": "2026-01-01T00:00:00Z",
        }
        client.post(f"{CHAT_SIDECAR}/v1.0/publish/pubsub/conversations", json=event)
    published = time.perf_counter() - start

    def settled() -> bool:
        now = metrics(client)
        return (
            now["events_handled"] - before["events_handled"] >= events and now["pending_users"] == 0
        )

    wait(settled, timeout=300, interval=0.2)
    elapsed = time.perf_counter() - start
    after = metrics(client)
    calls = after["summary_calls"] - before["summary_calls"]
    print(
        f"burst: {events} events for {users} users published in {published:.2f} s, "
        f"all stored and summarised in {elapsed:.2f} s"
    )
    print(
        f"summary LLM calls: {calls} -> {calls / events:.3f} per event "
        f"({after['summary_failures'] - before['summary_failures']} failures)"
    )


def bench_visibility(client: httpx.Client, chats: int) -> None:
    samples = []
    session = f"latency-{uuid.uuid4().hex[:8]}"
    for n in range(chats):
        body = {
            "user_id": "latency-user",
            "text": f"Message number {n}",
            "metadata": {"session_id": session},
        }
        reply = client.post(f"{CHAT}/chat/", json=body, timeout=60)
        replied = time.perf_counter()
        assert reply.status_code == 200, reply.text
        wanted = 2 * (n + 1)
        while True:
            answer = client.get(f"{MEMORY}/conversations/{session}", params={"limit": 2}).json()
            if answer["total_entries"] >= wanted:
                break
            time.sleep(0.001)
        samples.append((time.perf_counter() - replied) * 1000)
    print(
        f"reply -> turn visible in history: p50 {percentile(samples, 50):.1f} ms, "
        f"p99 {percentile(samples, 99):.1f} ms, max {max(samples):.1f} ms (n={chats})"
    )


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DACA_HOME": home, "LOG_LEVEL": "WARNING"}
        daca = os.path.join(os.path.dirname(sys.executable), "daca")
        process = subprocess.Popen(
            [daca, "--log-level", "warning", "up"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            with httpx.Client(timeout=30) as client:
                wait(lambda: client.get(f"{CHAT}/").status_code == 200)
                wait(lambda: client.get("http://127.0.0.1:3501/v1.0/healthz").status_code == 204)
                print(f"daca services benchmark on {os.cpu_count()} cores (offline model)")
                bench_visibility(client, args.chats)
                bench_burst(client, args.burst, args.users)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--chats", type=int, default=200)
    main(parser.parse_args())
