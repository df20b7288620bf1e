"""The memory service's long-lived objects, built once per app lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from daca.dapr.client import DaprClient
from daca.memory.deadletters import DeadLetterStore
from daca.memory.embeddings import Embedder
from daca.memory.events import EventHandler
from daca.memory.history import HistoryStore
from daca.memory.metrics import Counters, MemoryMetrics
from daca.memory.settings import MemorySettings
from daca.memory.statekit import ReadHints
from daca.memory.summaries import SummaryStore
from daca.memory.summarizer import Summarizer, SummaryWriter
from daca.memory.users import UserStore


@dataclass(frozen=True)
class MemoryServices:
    """Everything the routes reach through dependencies."""

    settings: MemorySettings
    client: DaprClient
    counters: Counters
    history: HistoryStore
    users: UserStore
    summarizer: Summarizer
    dead_letters: DeadLetterStore
    events: EventHandler
    prometheus: MemoryMetrics
    embedder: Embedder | None = None
    #: The pages each context read needed (``daca.memory.context``).
    page_hints: ReadHints = field(default_factory=ReadHints)

    def metrics(self) -> dict[str, int]:
        """The counters plus the number of users with a summary pending."""
        return self.counters.snapshot() | {"pending_users": self.summarizer.pending_users}


def build_services(
    settings: MemorySettings,
    client: DaprClient,
    writer: SummaryWriter,
    embedder: Embedder | None = None,
    metrics: MemoryMetrics | None = None,
) -> MemoryServices:
    """Wire the stores, the summarizer and the event handler around one Dapr client."""
    metrics = metrics or MemoryMetrics()
    counters = metrics.counters
    history = HistoryStore(client, settings, on_conflict=counters.conflict)
    users = UserStore(client, settings)
    store = SummaryStore(client, settings, embedder)
    summarizer = Summarizer(store, writer, settings, metrics)
    metrics.watch_pending_users(lambda: summarizer.pending_users)
    return MemoryServices(
        settings=settings,
        client=client,
        counters=counters,
        history=history,
        users=users,
        summarizer=summarizer,
        dead_letters=DeadLetterStore(client, settings),
        events=EventHandler(history, users, summarizer, counters),
        prometheus=metrics,
        embedder=embedder,
    )
