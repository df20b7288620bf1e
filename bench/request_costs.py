"""What one request costs in CPU: the HTTP servers under the sidecar, and the LLM client's call.

Two parts, each printed as it ends:

1. **servers**: ``--requests`` requests from 8 concurrent aiohttp clients (this process) to a
   server in a child process, whose CPU (user + system, from ``/proc``) is divided by the
   requests. The servers: a bare ASGI app on uvicorn (httptools, uvloop) answering a fixed body,
   the same on ``aiohttp.web``, and a daca sidecar over the in-memory state store answering a
   state GET and a bulk get of three keys. The first two are the floor any Python server on
   this machine pays per request; the sidecar's figure above it is routing, the state API and
   the store.
2. **llm client**: ``--calls`` agent runs (the Agents SDK's ``Runner.run``, one model call each)
   against an aiohttp fake OpenAI-compatible server in a child process, with the plain
   ``openai.AsyncOpenAI`` and with ``daca.llm.client.ChatClient``; this process's CPU per run.

    .venv/bin/python bench/request_costs.py [--requests 8000] [--calls 1000]

Everything runs on loopback ports the kernel picks. Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

TICKS = os.sysconf("SC_CLK_TCK")

# --- the servers, each run as ``python request_costs.py --serve KIND`` --------------------------

_BODY = b'{"a": 1}'


async def _serve_uvicorn() -> None:
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": _BODY})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    await _announce_and_wait(port)
    server.should_exit = True
    await task


async def _serve_aiohttp() -> None:
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=_BODY, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    await _serve_web(app)


async def _serve_sidecar() -> None:
    from daca.runtime.config import SidecarConfig
    from daca.runtime.sidecar import Sidecar

    home = Path(tempfile.mkdtemp(prefix="daca-costs-"))
    (home / "components").mkdir()
    (home / "components" / "state.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\n"
        "spec:\n  type: state.in-memory\n  version: v1\n  metadata: []\n"
    )
    config = SidecarConfig(
        app_id="costs", http_port=0, resources_paths=(home / "components",),
        home=home / "home", bundle_redis=False,
    )  # fmt: skip
    async with Sidecar(config) as sidecar:
        await _announce_and_wait(sidecar.http_port)


async def _serve_llm() -> None:
    from aiohttp import web

    reply = {
        "id": "chatcmpl-costs", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Noted."}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip

    async def complete(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(reply)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    await _serve_web(app)


async def _serve_web(app: Any) -> None:
    """Serve an ``aiohttp.web`` app on a loopback port the kernel picks, until told to stop."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    await _announce_and_wait(runner.addresses[0][1])
    await runner.cleanup()


async def _announce_and_wait(port: int) -> None:
    """Tell the parent the port, then serve until it closes our stdin."""
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


SERVERS = {
    "uvicorn": _serve_uvicorn,
    "aiohttp": _serve_aiohttp,
    "sidecar": _serve_sidecar,
    "llm": _serve_llm,
}

# --- the measurements -------------------------------------------------------------------------


class Child:
    """A server child process: its port, and its CPU seconds so far."""

    def __init__(self, kind: str) -> None:
        command = [sys.executable, __file__, "--serve", kind]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {kind} server did not start")
        self.port = int(line)

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


async def server_cost(kind: str, path: str, requests: int, body: bytes | None = None) -> float:
    """The server's CPU microseconds per request, after a warm-up of 500."""
    child = Child(kind)
    url = f"http://127.0.0.1:{child.port}{path}"
    try:
        async with aiohttp.ClientSession() as session:
            if kind == "sidecar":
                seed = [{"key": "k", "value": {"name": "Ada", "notes": "x" * 200}}]
                base = f"http://127.0.0.1:{child.port}/v1.0/state/statestore"
                async with session.post(base, json=seed) as answer:
                    assert answer.status == 204, answer.status

            async def one() -> None:
                method = "POST" if body is not None else "GET"
                async with session.request(method, url, data=body) as answer:
                    await answer.read()
                    assert answer.status == 200, answer.status

            async def worker(count: int) -> None:
                for _ in range(count):
                    await one()

            await worker(500)
            before = child.cpu()
            await asyncio.gather(*(worker(requests // 8) for _ in range(8)))
            spent = child.cpu() - before
    finally:
        child.stop()
    return spent / (requests // 8 * 8) * 1e6


async def client_cost(calls: int) -> dict[str, float]:
    """This process's CPU milliseconds per agent run, by client kind."""
    from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner
    from openai import AsyncOpenAI, DefaultAioHttpClient

    from daca.heap import freeze_startup_heap
    from daca.llm.client import ChatClient
    from daca.llm.tools import get_current_time

    freeze_startup_heap()  # as the chat service does once started
    child = Child("llm")
    costs: dict[str, float] = {}
    instructions = "You are a helpful assistant who remembers the user. " * 30
    try:
        for kind in (AsyncOpenAI, ChatClient, AsyncOpenAI, ChatClient):
            client = kind(
                base_url=f"http://127.0.0.1:{child.port}/v1", api_key="none", max_retries=0,
                http_client=DefaultAioHttpClient(),
            )  # fmt: skip
            model = OpenAIChatCompletionsModel(model="m", openai_client=client)
            agent = Agent(
                name="Chat", instructions=instructions, tools=[get_current_time], model=model
            )
            run_config = RunConfig(tracing_disabled=True)
            for _ in range(50):
                await Runner.run(agent, "Hello, how are you?", run_config=run_config)
            started = time.process_time()
            for _ in range(calls):
                await Runner.run(agent, "Hello, how are you?", run_config=run_config)
            spent = (time.process_time() - started) / calls * 1e3
            costs[kind.__name__] = min(costs.get(kind.__name__, spent), spent)
            await client.close()
    finally:
        child.stop()
    return costs


async def main(args: argparse.Namespace) -> None:
    print(f"request costs: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    floor = {kind: await server_cost(kind, "/x", args.requests) for kind in ("uvicorn", "aiohttp")}
    print(
        f"servers: a fixed answer costs uvicorn {floor['uvicorn']:.0f} us, "
        f"aiohttp.web {floor['aiohttp']:.0f} us of server CPU per request"
    )
    state = "/v1.0/state/statestore"
    get = await server_cost("sidecar", f"{state}/k", args.requests)
    keys = json.dumps({"keys": ["k", "k2", "k3"]}).encode()
    bulk = await server_cost("sidecar", f"{state}/bulk", args.requests, body=keys)
    print(f"  daca sidecar, in-memory store: state GET {get:.0f} us, bulk get of 3 {bulk:.0f} us")
    costs = await client_cost(args.calls)
    print(
        f"llm client: one agent run with one model call costs {costs['AsyncOpenAI']:.2f} ms "
        f"of CPU with AsyncOpenAI, {costs['ChatClient']:.2f} ms with ChatClient (best of two)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--serve", choices=sorted(SERVERS), help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve:
        import uvloop

        uvloop.run(SERVERS[parsed.serve]())
    else:
        asyncio.run(main(parsed))
