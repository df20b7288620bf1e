"""Both services against their own OpenAPI documents, with schemathesis (issue 7, hole 13).

Each service runs as a real uvicorn server on a free loopback port, in local mode, its sidecar
faked (the chat's model is the offline one); a third run is the chat in production mode, with a
valid bearer token, so the 401 and 403 answers are documented and checked. Every operation,
the subscriber routes included, gets schemathesis's examples, coverage and fuzzing phases,
positive and negative, with every default check: no server error, documented statuses, content
types, headers and bodies, schema-valid requests accepted and schema-violating ones refused,
``Allow`` on a 405, missing and ignored authentication.

The one replaced check: a subscriber answers a schema-violating CloudEvent 200 ``DROP`` (the
sidecar then dead-letters it) instead of refusing it, so on ``POST /conversations``
``negative_data_rejection`` gives way to ``malformed_events_are_dropped``.

The apps are built when the module is imported, so that schemathesis makes one test per
operation from each app's document; each server then checks that its ``/openapi.json`` is that
document. Generation is deterministic (``derandomize``, no example database); the cases each
operation got are logged and must be at least ``MIN_CASES``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import jwt
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext
from schemathesis.specs.openapi.checks import negative_data_rejection

from daca.access.settings import AccessSettings
from daca.chat.app import create_app as create_chat_app
from daca.llm.offline import OfflineModel
from daca.memory.app import create_app as create_memory_app
from tests.chat.conftest import chat_settings
from tests.chat.fake_sidecar import FakeSidecar as ChatSidecar
from tests.memory.fake_sidecar import FakeSidecar as MemorySidecar
from tests.memory.helpers import FakeWriter, memory_settings
from tests.runtime.harness import serve

logger = logging.getLogger(__name__)

#: Fuzzing examples per operation; the coverage and examples phases add their own cases.
MAX_EXAMPLES = 250
#: What each operation with inputs (parameters or a body) must get at least, or the run proves
#: little; one without inputs has a single distinct request (and its coverage variants).
MIN_CASES = 200
SECRET = "openapi-test-secret-of-at-least-32-bytes"
EVENT_MEDIA_TYPES = ("application/cloudevents+json", "application/json")
#: The environment the apps are built without (``tests/conftest.py`` clears it for each test;
#: these apps are built at import).
CLEARED_PREFIXES = ("DAPR_", "APP_", "LLM_", "GEMINI_", "OPENAI_", "DACA_")

CASE_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@contextmanager
def clean_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(CLEARED_PREFIXES):
                patch.delenv(name)
        yield


@dataclass
class Service:
    """An app, the schema made from its document, and, once served, its URL and tallies."""

    name: str
    app: Any
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""
    cases: Counter[str] = field(default_factory=Counter)
    session: requests.Session = field(default_factory=requests.Session)
    #: When the first case was sent and the last one answered.
    busy: list[float] = field(default_factory=lambda: [0.0, 0.0])

    def __post_init__(self) -> None:
        self.document: dict[str, Any] = self.app.openapi()
        self.schema = schemathesis.openapi.from_dict(self.document, config=schemathesis.Config())
        components = self.document["components"]
        self.event_body = jsonschema.Draft202012Validator(
            {"$ref": "#/components/schemas/CloudEvent", "components": components}
        )

    def operations(self) -> dict[str, int]:
        """Each operation and the cases it must get at least."""
        return {
            f"{method.upper()} {path}": MIN_CASES if _has_inputs(operation) else 1
            for path, operations in self.document["paths"].items()
            for method, operation in operations.items()
        }

    def check(self, case: schemathesis.Case) -> None:
        """Send ``case`` to the server and validate the answer with every default check."""
        label = f"{case.method.upper()} {case.path}"
        self.cases[label] += 1
        kwargs: dict[str, Any] = {}
        if label == "POST /conversations":
            kwargs = {
                "excluded_checks": [negative_data_rejection],
                "additional_checks": [self.malformed_events_are_dropped],
            }
        self.busy[0] = self.busy[0] or time.monotonic()
        try:
            case.call_and_validate(
                base_url=self.url, session=self.session, headers=self.headers, **kwargs
            )
        finally:
            self.busy[1] = time.monotonic()

    def malformed_events_are_dropped(
        self, ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case
    ) -> None:
        """The subscriber's promise: a JSON body that is not the documented ``CloudEvent`` is
        answered 200 ``{"status": "DROP"}``, so the sidecar dead-letters it."""
        if case.media_type not in EVENT_MEDIA_TYPES or self.event_body.is_valid(case.body):
            return
        self.cases["malformed events"] += 1
        assert response.status_code == 200, f"a malformed event got {response.status_code}"
        assert json.loads(response.content) == {"status": "DROP"}, response.content

    @contextmanager
    def served(self) -> Iterator[None]:
        """Serve the app with uvicorn (``tests.runtime.harness.serve``) in a thread with its
        own event loop (schemathesis calls it synchronously); log and check the tallies."""
        started: concurrent.futures.Future[tuple[int, asyncio.AbstractEventLoop, asyncio.Event]]
        started = concurrent.futures.Future()

        async def main() -> None:
            stop = asyncio.Event()
            async with serve(self.app) as port:
                started.set_result((port, asyncio.get_running_loop(), stop))
                await stop.wait()

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                raise

        thread = threading.Thread(target=run, name=f"{self.name} server", daemon=True)
        thread.start()
        port, loop, stop = started.result(timeout=60)
        try:
            self.url = f"http://127.0.0.1:{port}"
            served = self.session.get(f"{self.url}/openapi.json", timeout=30).json()
            assert served == self.document, "the served document is not the one under test"
            yield
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=60)
            self.session.close()
        assert not thread.is_alive(), "the server did not stop"
        self.report()

    def report(self) -> None:
        wanted = self.operations()
        counts = {label: self.cases[label] for label in wanted}
        seconds = self.busy[1] - self.busy[0]
        logger.info("%s: %d cases in %.1f s: %s", self.name, sum(counts.values()), seconds, counts)
        if "POST /conversations" in wanted:
            malformed = self.cases["malformed events"]
            logger.info("%s: %d malformed events checked", self.name, malformed)
            wanted["malformed events"] = MIN_CASES // 3
            counts["malformed events"] = malformed
        # An operation with no case at all was not selected (``-k``); one that ran has cases.
        starved = {label: n for label, n in counts.items() if 0 < n < wanted[label]}
        assert not starved, f"{self.name}: too few cases (want {MIN_CASES}): {starved}"


def _has_inputs(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters") or operation.get("requestBody"))


def _memory() -> Service:
    app = create_memory_app(
        memory_settings(), summary_writer=FakeWriter(), dapr_transport=MemorySidecar().transport
    )
    return Service("memory service", app)


def _chat(access: AccessSettings, headers: dict[str, str] | None = None) -> Service:
    app = create_chat_app(
        chat_settings(access=access), model=OfflineModel(), dapr_transport=ChatSidecar().transport
    )
    return Service(f"chat service ({access.mode} mode)", app, headers or {})


def _production_chat() -> Service:
    access = AccessSettings.model_validate({"DACA_MODE": "production", "AUTH_JWT_SECRET": SECRET})
    token = jwt.encode({"sub": "ana", "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
    return _chat(access, {"Authorization": f"Bearer {token}"})


with clean_environment():
    MEMORY, CHAT, PRODUCTION_CHAT = _memory(), _chat(AccessSettings()), _production_chat()


@pytest.fixture(scope="module")
def memory_service() -> Iterator[Service]:
    with MEMORY.served():
        yield MEMORY


@pytest.fixture(scope="module")
def chat_service() -> Iterator[Service]:
    with CHAT.served():
        yield CHAT


@pytest.fixture(scope="module")
def production_chat_service() -> Iterator[Service]:
    with PRODUCTION_CHAT.served():
        yield PRODUCTION_CHAT


@MEMORY.schema.parametrize()
@CASE_SETTINGS
def test_the_memory_service(case: schemathesis.Case, memory_service: Service) -> None:
    memory_service.check(case)


@CHAT.schema.parametrize()
@CASE_SETTINGS
def test_the_chat_service(case: schemathesis.Case, chat_service: Service) -> None:
    chat_service.check(case)


@PRODUCTION_CHAT.schema.parametrize()
@CASE_SETTINGS
def test_the_chat_service_in_production_mode(
    case: schemathesis.Case, production_chat_service: Service
) -> None:
    production_chat_service.check(case)
