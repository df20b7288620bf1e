"""Reading the turns a summary must cover, and writing a summary and its facts back.

The write-back is one transaction guarded by ETags: the user record (new ``user_summary`` and
bookkeeping), the new facts (``daca.memory.facts``), the covered turns appended to the user's
log (``userlog``, what search reads), then the pending record without exactly the covered turns
(every record is created empty first if missing, see ``daca.dapr.guarded``). Turns that
arrived while the summary was being written stay pending; if a covered turn is no longer
pending (the user was forgotten meanwhile), nothing is written.

Where a transaction is not atomic (daprd on Redis runs each write as its own guarded script,
without rollback), a transaction that fails on one guard still applies the others: an append
that rewrote the pending record meanwhile leaves the summary and the log written and the turns
pending; a metadata update that rewrote the user record leaves the turns moved to the log and
the summary unwritten. So every retry of a commit completes what its earlier attempts left:

* the user record is written unless it already carries this summary (the same text, and the
  same last covered turn), so the covered turns are counted once;
* the log gains only the covered turns it lacks; an earlier attempt appended them at its end,
  and ``userlog.read_for_append`` reads back that far;
* facts repeat nothing (``add_facts`` skips a fact the book already holds);
* after a transaction was sent, covered turns no longer pending are taken as moved by it, so
  the summary is still stored, unless the user record is gone (the user was forgotten) or
  holds another summary ending at the same turn (another replica summarised them).

If the retries give up, the turns still pending are summarised once more in a later round,
which costs an LLM call but loses nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from daca.contracts.models import MAX_SUMMARY_CHARS, ConversationTurn, UserMetadata, utc_now_iso
from daca.dapr.client import DaprClient
from daca.dapr.guarded import create_missing, guarded_upsert
from daca.dapr.retry import ConflictError, retry_on_conflict
from daca.llm.memory_update import MemoryUpdate
from daca.llm.prompts import clip
from daca.memory import keys, userlog
from daca.memory.embeddings import Embedder, embed_or_none
from daca.memory.facts import add_facts, facts_for_prompt
from daca.memory.records import FactBook, PendingTurns, summary_batch_size
from daca.memory.search import searchable_text
from daca.memory.settings import MemorySettings
from daca.memory.statekit import parse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SummaryInput:
    """The previous summary, the known facts to show and the oldest pending turns (at most
    one batch)."""

    previous_summary: str | None
    turns: list[ConversationTurn]
    known_facts: list[tuple[str, str]]


class SummaryStore:
    """State access for the summarizer: ``user:{id}``, ``pending:{id}``, ``facts:{id}`` and
    the user's log."""

    def __init__(
        self, client: DaprClient, settings: MemorySettings, embedder: Embedder | None = None
    ) -> None:
        self._client = client
        self._embedder = embedder
        self._store = settings.state_store
        self._attempts = settings.append_max_attempts
        self._batch = settings.summary_max_batch
        self._ttl = settings.session_ttl_seconds

    async def load(self, user_id: str) -> SummaryInput:
        """What the next summary call needs."""
        wanted = [keys.user_key(user_id), keys.pending_key(user_id), keys.facts_key(user_id)]
        user_entry, pending_entry, facts_entry = await self._client.bulk_get_state(
            self._store, wanted
        )
        user = parse(UserMetadata, user_entry)
        pending = parse(PendingTurns, pending_entry) or PendingTurns()
        book = parse(FactBook, facts_entry) or FactBook()
        previous = user.user_summary if user is not None else None
        sizes = [len(t.user_message) + len(t.assistant_reply) for t in pending.turns]
        turns = pending.turns[: summary_batch_size(sizes, self._batch)]
        return SummaryInput(previous, turns, facts_for_prompt(book, turns))

    async def commit(
        self, user_id: str, update: MemoryUpdate, covered: list[ConversationTurn]
    ) -> bool:
        """Store ``update`` and drop the ``covered`` turns; ``True`` if turns remain pending.

        With embeddings, the covered turns and the new facts are embedded first, in one call."""
        texts = [searchable_text(t) for t in covered] + [f.text for f in update.facts]
        vectors = await embed_or_none(self._embedder, texts)
        turn_vectors = {
            (t.session_id, t.turn_id): v for t, v in zip(covered, vectors, strict=False)
        }
        write = _Write(user_id, update, covered, turn_vectors, vectors[len(covered) :])
        return await retry_on_conflict(
            lambda: self._commit_once(write),
            attempts=self._attempts,
            what=f"store summary of user {user_id}",
        )

    async def _commit_once(self, write: _Write) -> bool:
        """One guarded attempt of ``commit``: summary, facts, pending turns and the log, each
        as far as earlier attempts have not written it (see the module docstring)."""
        user_id, update, covered = write.user_id, write.update, write.covered
        user_key, pending_key = keys.user_key(user_id), keys.pending_key(user_id)
        facts_key = keys.facts_key(user_id)
        user_entry, pending_entry, facts_entry, log_entry = await self._client.bulk_get_state(
            self._store, [user_key, pending_key, facts_key, keys.log_head_key(user_id)]
        )
        pending = parse(PendingTurns, pending_entry) or PendingTurns()
        remaining = pending.without(covered)
        user = parse(UserMetadata, user_entry)
        if len(pending.turns) - len(remaining.turns) < len(covered):
            if not write.sent or user is None or _summarised_by_another(user, update, covered):
                logger.info("turns of user %s are no longer pending: summary discarded", user_id)
                return bool(remaining.turns)
            logger.info("completing the summary of user %s that an attempt half wrote", user_id)
        log = await userlog.read_for_append(
            self._client, self._store, user_id, log_entry, len(covered)
        )
        read = {user_key: user_entry, facts_key: facts_entry, **log.entries(user_id)}
        empty = {user_key: UserMetadata(), facts_key: FactBook(), **log.empty_records(user_id)}
        if not update.facts:
            del read[facts_key], empty[facts_key]
        if await create_missing(self._client, self._store, empty, read):
            raise ConflictError("created the user's records; read them again")
        user = user or UserMetadata()
        operations = []
        if not _carries(user, update.summary, covered):
            summarised = _summarised(user, update.summary, covered)
            operations.append(guarded_upsert(user_key, summarised, user_entry))
        if update.facts:
            book = add_facts(
                parse(FactBook, facts_entry) or FactBook(), update.facts, utc_now_iso(),
                write.fact_vectors,
            )  # fmt: skip
            operations.append(guarded_upsert(facts_key, book, facts_entry))
        operations += [
            *userlog.append_operations(
                user_id,
                log,
                userlog.not_logged(log, covered),
                ttl=self._ttl,
                vectors=write.turn_vectors,
            ),
            guarded_upsert(pending_key, remaining, pending_entry),
        ]
        write.sent = True
        await self._client.transact_state(self._store, operations)
        logger.info(
            "stored summary of user %s covering %d turns, %d new facts",
            user_id, len(covered), len(update.facts),
        )  # fmt: skip
        return bool(remaining.turns)


@dataclass
class _Write:
    """What one commit writes, and whether an attempt of it has sent its transaction (which,
    failing, may have written part of it)."""

    user_id: str
    update: MemoryUpdate
    covered: list[ConversationTurn]
    turn_vectors: dict[tuple[str, str], str | None]
    fact_vectors: list[str | None]
    sent: bool = False


def _carries(user: UserMetadata, summary: str, covered: list[ConversationTurn]) -> bool:
    """Whether ``user`` already holds this summary of ``covered`` (an earlier attempt wrote it)."""
    return (
        bool(covered)
        and user.summary_last_turn_id == covered[-1].turn_id
        and user.user_summary == clip(summary, MAX_SUMMARY_CHARS)
    )


def _summarised_by_another(
    user: UserMetadata, update: MemoryUpdate, covered: list[ConversationTurn]
) -> bool:
    """Whether ``user`` holds another summary that ends at the last covered turn (another
    replica summarised the same turns): then this one is not written over it."""
    return user.summary_last_turn_id == covered[-1].turn_id and not _carries(
        user, update.summary, covered
    )


def _summarised(user: UserMetadata, summary: str, covered: list[ConversationTurn]) -> UserMetadata:
    """``user`` with the new summary and its bookkeeping."""
    return user.model_copy(
        update={
            "user_summary": clip(summary, MAX_SUMMARY_CHARS),
            "summary_turn_count": user.summary_turn_count + len(covered),
            "summary_last_turn_id": covered[-1].turn_id if covered else user.summary_last_turn_id,
            "summary_updated_at": utc_now_iso(),
        }
    )
