"""Long-term memory quality on LoCoMo: evidence recall of the search route, and answer F1.

Run: ``.venv/bin/python bench/memory_quality.py LOCOMO_JSON [--k 5 10] [--conversations N]
[--sample-id conv-26] [--skip-answers] [--json PATH]``, e.g. with the development subset
``/work/shared/locomo/locomo-dev.json`` (test data: it is not part of the project).

It starts the whole system as the README does (``daca up``: bundled Redis, both sidecars, both
services; the offline model unless ``LLM_*``/``GEMINI_*`` settings are in the environment) with a
temporary ``DACA_HOME``, and drives it over HTTP only, on 127.0.0.1:

1. every LoCoMo conversation becomes a user (``locomo-{sample_id}``, named ``speaker_a``) and
   every session a session (``{sample_id}-s{N}``); each turn of ``speaker_a`` with the
   ``speaker_b`` turn after it is one ``ConversationUpdated`` event (user message, assistant
   reply), published through the chat's sidecar as the chat publishes it, dated from
   ``session_N_date_time`` plus one second per pair. A session that opens with ``speaker_b``
   starts with a pair whose user message is empty; a session that ends with ``speaker_a`` ends
   with a pair whose reply is empty (``--pairing first`` pairs from each session's first turn
   instead). Each text is ``"{speaker}: {text}"`` (``--no-speaker-names``: the text alone),
   with ``[image: caption]`` for a shared image, as LoCoMo's own evaluation renders turns;
2. once every turn is stored and visible to search, each question of categories 1-4 is sent to
   ``GET /memories/{user}/search`` and scored by evidence recall@k: the share of its evidence
   ``dia_id``s whose turn is among the top k results;
3. unless ``--skip-answers``, each question is then asked through ``POST /chat/`` (one fresh
   session per conversation, after all searches, so these turns do not pollute recall) and the
   reply is scored with LoCoMo's token F1.

The ports of the README (8010, 8001, 3500, 3501, 6379) must be free.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from daca.contracts.events import ConversationUpdated
from daca.contracts.ids import validate_identifier
from daca.memory import keys

CHAT, MEMORY = "http://127.0.0.1:8010", "http://127.0.0.1:8001"
CHAT_SIDECAR, MEMORY_SIDECAR = "http://127.0.0.1:3500", "http://127.0.0.1:3501"
PUBLISH = f"{CHAT_SIDECAR}/v1.0/publish/pubsub/conversations"
PORTS = (8010, 8001, 3500, 3501, 6379)
ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
DATE_FORMAT = "%I:%M %p on %d %B, %Y"  # "1:56 pm on 8 May, 2023"
_DIA_ID = re.compile(r"D(\d+):(\d+)")


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Pair:
    """One event: a ``speaker_a`` turn and the ``speaker_b`` reply (either may be missing)."""

    session_id: str
    turn_id: str
    user_message: str
    assistant_reply: str
    timestamp: str
    dia_ids: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    sample_id: str
    index: int
    category: int
    question: str
    answer: str
    evidence: tuple[str, ...]  # normalised ids that name a turn
    skipped_evidence: tuple[str, ...]  # ids that name no turn


@dataclass
class Conversation:
    sample_id: str
    user_id: str
    speaker_a: str
    speaker_b: str
    pairs: list[Pair] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    turn_of: dict[str, str] = field(default_factory=dict)  # dia_id -> turn_id
    turns: dict[str, dict[str, Any]] = field(default_factory=dict)  # dia_id -> LoCoMo turn

    @property
    def session_ids(self) -> list[str]:
        return list(dict.fromkeys(pair.session_id for pair in self.pairs))


def render(turn: dict[str, Any], with_speaker: bool) -> str:
    """A LoCoMo turn as one message text: speaker, text, and the caption of a shared image."""
    text = " ".join(str(turn.get("text", "")).split())
    caption = turn.get("blip_caption")
    if caption:
        text = f"{text} [image: {' '.join(str(caption).split())}]".strip()
    return f"{turn['speaker']}: {text}" if with_speaker else text


def session_numbers(conversation: dict[str, Any]) -> list[int]:
    found = (re.fullmatch(r"session_(\d+)", name) for name in conversation)
    return sorted(
        int(m.group(1)) for m in found if m and isinstance(conversation[m.group(0)], list)
    )


def session_start(text: str) -> datetime:
    """``session_N_date_time`` ("1:56 pm on 8 May, 2023") as a UTC date-time (LoCoMo gives
    no time zone)."""
    return datetime.strptime(" ".join(text.split()), DATE_FORMAT).replace(tzinfo=UTC)


def group_turns(turns: list[dict[str, Any]], speaker_a: str, pairing: str) -> list[list[Any]]:
    """The session's turns as ``[user turn or None, reply turn or None]`` pairs, in order."""
    pairs: list[list[Any]] = []
    if pairing == "first":
        for start in range(0, len(turns), 2):
            chunk = turns[start : start + 2]
            pairs.append([chunk[0], chunk[1] if len(chunk) > 1 else None])
        return pairs
    for turn in turns:
        if turn["speaker"] == speaker_a:
            pairs.append([turn, None])
        elif pairs and pairs[-1][1] is None:
            pairs[-1][1] = turn
        else:  # speaker_b opens the session, or speaks twice in a row
            pairs.append([None, turn])
    return pairs


def normalise_evidence(raw: Iterable[Any]) -> list[str]:
    """Evidence ids as ``D<session>:<turn>``: whitespace and separators (``;``, ``,``) split,
    leading zeros dropped; what is not shaped like an id is kept as is (it will match no
    turn and be counted as skipped)."""
    ids: list[str] = []
    for item in raw:
        for piece in re.split(r"[;,\s]+", str(item)):
            if not piece:
                continue
            match = _DIA_ID.fullmatch(piece)
            ids.append(f"D{int(match.group(1))}:{int(match.group(2))}" if match else piece)
    return list(dict.fromkeys(ids))


def load(path: Path, *, pairing: str, with_speaker: bool) -> list[Conversation]:
    conversations = []
    for sample in json.loads(path.read_text()):
        sample_id = str(sample["sample_id"])
        body = sample["conversation"]
        conv = Conversation(
            sample_id=sample_id,
            user_id=validate_identifier(f"locomo-{sample_id}"),
            speaker_a=body["speaker_a"],
            speaker_b=body["speaker_b"],
        )
        for number in session_numbers(body):
            turns = body[f"session_{number}"]
            if not turns:
                continue
            session_id = validate_identifier(f"{sample_id}-s{number}")
            start = session_start(body[f"session_{number}_date_time"])
            for index, (first, second) in enumerate(group_turns(turns, conv.speaker_a, pairing)):
                members = [t for t in (first, second) if t is not None]
                pair = Pair(
                    session_id=session_id,
                    turn_id=validate_identifier(f"{session_id}-p{index + 1}"),
                    user_message=render(first, with_speaker) if first else "",
                    assistant_reply=render(second, with_speaker) if second else "",
                    timestamp=(start + timedelta(seconds=index)).isoformat(),
                    dia_ids=tuple(str(t["dia_id"]).strip() for t in members),
                )
                conv.pairs.append(pair)
                for turn in members:
                    conv.turn_of[str(turn["dia_id"]).strip()] = pair.turn_id
                    conv.turns[str(turn["dia_id"]).strip()] = turn
        for index, qa in enumerate(sample["qa"]):
            if qa.get("category") not in CATEGORIES:
                continue
            evidence = normalise_evidence(qa.get("evidence") or [])
            answer = qa.get("answer", "")
            conv.questions.append(
                Question(
                    sample_id=sample_id,
                    index=index,
                    category=int(qa["category"]),
                    question=str(qa["question"]),
                    answer=answer if isinstance(answer, str) else json.dumps(answer),
                    evidence=tuple(e for e in evidence if e in conv.turn_of),
                    skipped_evidence=tuple(e for e in evidence if e not in conv.turn_of),
                )
            )
        conversations.append(conv)
    return conversations


# --------------------------------------------------------------------------- LoCoMo's F1

# As snap-research/locomo task_eval/evaluation.py scores answers: lower case, commas and other
# punctuation removed, the words a, an, the (and "and", which that code drops too) removed,
# whitespace tokens, each stemmed with NLTK's PorterStemmer; category 1 splits prediction and
# gold on commas and averages, over the gold parts, the best F1 of any prediction part; category
# 3 keeps the gold answer up to its first ';'. NLTK is not a dependency of this project: it is
# used when installed, else the original Porter (1980) algorithm below, which differs from
# NLTK's default mode only on rare suffixes (e.g. "-logi", "-fulli").


def _porter_fallback() -> Callable[[str], str]:
    vowels = frozenset("aeiou")

    def consonant(word: str, i: int) -> bool:
        if word[i] in vowels:
            return False
        if word[i] == "y":
            return i == 0 or not consonant(word, i - 1)
        return True

    def measure(stem: str) -> int:
        forms = "".join("c" if consonant(stem, i) else "v" for i in range(len(stem)))
        return len(re.findall("vc", re.sub(r"(.)\1+", r"\1", forms)))

    def has_vowel(stem: str) -> bool:
        return any(not consonant(stem, i) for i in range(len(stem)))

    def double_consonant(stem: str) -> bool:
        return len(stem) >= 2 and stem[-1] == stem[-2] and consonant(stem, len(stem) - 1)

    def cvc(stem: str) -> bool:
        n = len(stem)
        return (
            n >= 3
            and consonant(stem, n - 3)
            and not consonant(stem, n - 2)
            and consonant(stem, n - 1)
            and stem[-1] not in "wxy"
        )

    def replace(word: str, rules: Sequence[tuple[str, str]], minimum: int) -> str:
        for suffix, replacement in rules:  # longest suffix first; only it is tried
            if word.endswith(suffix):
                stem = word[: -len(suffix)]
                return stem + replacement if measure(stem) > minimum else word
        return word

    step2 = sorted(
        [("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"),
         ("izer", "ize"), ("abli", "able"), ("alli", "al"), ("entli", "ent"), ("eli", "e"),
         ("ousli", "ous"), ("ization", "ize"), ("ation", "ate"), ("ator", "ate"),
         ("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous"),
         ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")],
        key=lambda rule: -len(rule[0]),
    )  # fmt: skip
    step3 = sorted(
        [("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"),
         ("ful", ""), ("ness", "")],
        key=lambda rule: -len(rule[0]),
    )  # fmt: skip
    step4_text = "al ance ence er ic able ible ant ement ment ent ion ou ism ate iti ous ive ize"
    step4 = sorted(step4_text.split(), key=lambda suffix: -len(suffix))

    def stem(word: str) -> str:
        if len(word) <= 2:
            return word
        # Step 1a.
        if word.endswith("sses") or word.endswith("ies"):
            word = word[:-2]
        elif word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        # Step 1b.
        extra = False
        if word.endswith("eed"):
            if measure(word[:-3]) > 0:
                word = word[:-1]
        elif word.endswith("ed") and has_vowel(word[:-2]):
            word, extra = word[:-2], True
        elif word.endswith("ing") and has_vowel(word[:-3]):
            word, extra = word[:-3], True
        if extra:
            if word.endswith(("at", "bl", "iz")):
                word += "e"
            elif double_consonant(word) and word[-1] not in "lsz":
                word = word[:-1]
            elif measure(word) == 1 and cvc(word):
                word += "e"
        # Step 1c.
        if word.endswith("y") and has_vowel(word[:-1]):
            word = word[:-1] + "i"
        word = replace(word, step2, 0)
        word = replace(word, step3, 0)
        # Step 4.
        for suffix in step4:
            if word.endswith(suffix):
                stem_ = word[: -len(suffix)]
                if measure(stem_) > 1 and (suffix != "ion" or stem_.endswith(("s", "t"))):
                    word = stem_
                break
        # Step 5.
        if word.endswith("e"):
            stem_ = word[:-1]
            if measure(stem_) > 1 or (measure(stem_) == 1 and not cvc(stem_)):
                word = stem_
        if measure(word) > 1 and double_consonant(word) and word.endswith("l"):
            word = word[:-1]
        return word

    return stem


def _stemmer() -> tuple[Callable[[str], str], str]:
    try:
        from nltk.stem import PorterStemmer  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return _porter_fallback(), "Porter (1980), built in"
    stem: Callable[[str], str] = PorterStemmer().stem
    return stem, "NLTK PorterStemmer"


STEM, STEMMER = _stemmer()
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.replace(",", "").lower() if ch not in _PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the|and)\b", " ", text).split())


def f1_score(prediction: str, gold: str) -> float:
    predicted = [STEM(w) for w in normalize_answer(prediction).split()]
    wanted = [STEM(w) for w in normalize_answer(gold).split()]
    same = sum((Counter(predicted) & Counter(wanted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(wanted)
    return 2 * precision * recall / (precision + recall)


def answer_f1(prediction: str, gold: str, category: int) -> float:
    if category == 1:
        predictions = [p.strip() for p in prediction.split(",")]
        golds = [g.strip() for g in gold.split(",")]
        return sum(max(f1_score(p, g) for p in predictions) for g in golds) / len(golds)
    if category == 3:
        gold = gold.split(";")[0].strip()
    return f1_score(prediction, gold)


# --------------------------------------------------------------------------- the system


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def wait(check: Callable[[], bool], what: str, timeout: float, interval: float = 0.05) -> None:
    """Poll ``check`` until it holds (HTTP errors count as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def busy_ports() -> list[int]:
    busy = []
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


class System:
    """``daca up`` in a temporary ``DACA_HOME``, its output in a log file."""

    def __init__(self, home: str, log_path: Path) -> None:
        self.log_path = log_path
        env = {**os.environ, "DACA_HOME": home, "LOG_LEVEL": "WARNING"}
        daca = os.path.join(os.path.dirname(sys.executable), "daca")
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [daca, "--log-level", "warning", "up"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready(self, client: httpx.Client) -> None:
        def up(url: str, status: int) -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"daca up exited with {self.process.returncode}")
            return client.get(url).status_code == status

        for url, status in (
            (f"{CHAT_SIDECAR}/v1.0/healthz", 204),
            (f"{MEMORY_SIDECAR}/v1.0/healthz", 204),
            (f"{CHAT}/", 200),
            (f"{MEMORY}/healthz", 200),
        ):
            wait(lambda: up(url, status), url, timeout=120)  # noqa: B023 (called at once)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def metrics(client: httpx.Client) -> dict[str, int]:
    answer: dict[str, int] = client.get(f"{MEMORY}/healthz").json()["metrics"]
    return answer


def dead_letters(client: httpx.Client) -> int:
    count: int = client.get(f"{MEMORY}/deadletters").json()["count"]
    return count


def visible_turns(client: httpx.Client, user_id: str) -> set[str]:
    """The turn ids search reads for ``user_id`` (logged and pending), from the memory
    service's records through its sidecar's state API."""

    def state(key: str) -> Any:
        answer = client.get(f"{MEMORY_SIDECAR}/v1.0/state/statestore/{key}")
        return answer.json() if answer.status_code == 200 and answer.content else None

    found = {t["turn_id"] for t in (state(keys.pending_key(user_id)) or {}).get("turns", [])}
    head = state(keys.log_head_key(user_id)) or {}
    count, size = int(head.get("count", 0)), int(head.get("page_size", 100)) or 100
    for page in range((count + size - 1) // size):
        turns = (state(keys.log_page_key(user_id, page)) or {}).get("turns", [])
        found.update(t["turn_id"] for t in turns[: count - page * size])
    return found


# --------------------------------------------------------------------------- the stages


def ingest(client: httpx.Client, conversations: list[Conversation]) -> dict[str, Any]:
    before, dead_before = metrics(client), dead_letters(client)
    for conv in conversations:
        answer = client.post(
            f"{MEMORY}/memories/{conv.user_id}/initialize", json={"name": conv.speaker_a}
        )
        answer.raise_for_status()
    events = [(conv.user_id, pair) for conv in conversations for pair in conv.pairs]
    start = time.perf_counter()
    for user_id, pair in events:
        event = ConversationUpdated(
            user_id=user_id, session_id=pair.session_id, turn_id=pair.turn_id,
            user_message=pair.user_message, assistant_reply=pair.assistant_reply,
            timestamp=pair.timestamp,
        )  # fmt: skip
        answer = client.post(PUBLISH, json=event.model_dump())
        if answer.status_code != 204:
            raise RuntimeError(f"publish {pair.turn_id}: {answer.status_code} {answer.text}")
    published = time.perf_counter() - start
    wanted = {sid: 0 for conv in conversations for sid in conv.session_ids}
    for conv in conversations:
        for pair in conv.pairs:
            wanted[pair.session_id] += 2

    def handled() -> bool:
        now = metrics(client)
        done = now["events_handled"] + now["events_dropped"]
        return done - before["events_handled"] - before["events_dropped"] >= len(events)

    wait(handled, "every event handled or dropped", timeout=600, interval=0.1)
    missing = dict(wanted)

    def stored() -> bool:
        for sid in list(missing):
            answer = client.get(f"{MEMORY}/conversations/{sid}", params={"limit": 1})
            if answer.status_code == 200 and answer.json()["total_entries"] >= missing[sid]:
                del missing[sid]
        return not missing

    wait(stored, "every session's history (see the dropped and dead-letter counters)", 120, 0.1)
    stored_at = time.perf_counter() - start
    invisible: dict[str, int] = {}

    def searchable() -> bool:
        invisible.clear()
        for conv in conversations:
            seen = visible_turns(client, conv.user_id)
            lost = [p.turn_id for p in conv.pairs if p.turn_id not in seen]
            if lost:
                invisible[conv.user_id] = len(lost)
        return not invisible

    wait(searchable, "every turn visible to search", timeout=120, interval=0.2)
    searchable_at = time.perf_counter() - start
    wait(lambda: metrics(client)["pending_users"] == 0, "summaries", timeout=600, interval=0.2)
    summarised_at = time.perf_counter() - start
    after = metrics(client)
    delta = {name: after[name] - before[name] for name in after if name != "pending_users"}
    return {
        "events": len(events),
        "users": len(conversations),
        "sessions": len(wanted),
        "published_s": published,
        "stored_s": stored_at,
        "searchable_s": searchable_at,
        "summarised_s": summarised_at,
        "counters": delta,
        "dead_letters": dead_letters(client) - dead_before,
    }


def evaluate_search(
    client: httpx.Client, conversations: list[Conversation], cutoffs: list[int]
) -> list[dict[str, Any]]:
    records = []
    for conv in conversations:
        for q in conv.questions:
            started = time.perf_counter()
            answer = client.get(
                f"{MEMORY}/memories/{conv.user_id}/search",
                params={"q": q.question, "k": max(cutoffs)},
            )
            latency = (time.perf_counter() - started) * 1000
            answer.raise_for_status()
            results = answer.json()["results"]
            ranked = [(r["kind"], list(r["turn_ids"])) for r in results]
            record: dict[str, Any] = {
                "sample_id": q.sample_id, "index": q.index, "category": q.category,
                "question": q.question, "answer": q.answer, "evidence": list(q.evidence),
                "skipped_evidence": list(q.skipped_evidence), "latency_ms": latency,
                "results": [{"kind": kind, "turn_ids": ids} for kind, ids in ranked],
                "evidence_turns": {e: conv.turn_of[e] for e in q.evidence},
            }  # fmt: skip
            for k in cutoffs:
                found = {t for _, ids in ranked[:k] for t in ids}
                hits = [e for e in q.evidence if conv.turn_of[e] in found]
                record[f"hits@{k}"] = hits
                record[f"recall@{k}"] = len(hits) / len(q.evidence) if q.evidence else None
            records.append(record)
    return records


def evaluate_answers(
    client: httpx.Client, conversations: list[Conversation], records: list[dict[str, Any]]
) -> dict[str, Any]:
    before = metrics(client)
    by_key = {(r["sample_id"], r["index"]): r for r in records}
    latencies = []
    asked = 0
    for conv in conversations:
        session_id = validate_identifier(f"qa-{conv.sample_id}")
        for q in conv.questions:
            body = {"user_id": conv.user_id, "text": q.question,
                    "metadata": {"session_id": session_id}}  # fmt: skip
            started = time.perf_counter()
            answer = client.post(f"{CHAT}/chat/", json=body, timeout=180)
            latencies.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
            reply = answer.json()["reply"]
            record = by_key[(q.sample_id, q.index)]
            record["reply"] = reply
            record["f1"] = answer_f1(reply, q.answer, q.category)
            asked += 1

    def handled() -> bool:
        return metrics(client)["events_handled"] - before["events_handled"] >= asked

    wait(handled, "the chat's turns stored", timeout=300, interval=0.1)
    return {
        "asked": asked,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }


# --------------------------------------------------------------------------- the report


def mean(values: Iterable[float]) -> float | None:
    listed = list(values)
    return sum(listed) / len(listed) if listed else None


def summarise(records: list[dict[str, Any]], cutoffs: list[int]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {
        f"{c} {name}": [r for r in records if r["category"] == c] for c, name in CATEGORIES.items()
    }
    groups["overall"] = records
    table = {}
    for name, group in groups.items():
        scored = [r for r in group if r["evidence"]]
        row: dict[str, Any] = {"questions": len(group), "scored": len(scored)}
        for k in cutoffs:
            row[f"recall@{k}"] = mean(r[f"recall@{k}"] for r in scored)
        row["f1"] = mean(r["f1"] for r in group if "f1" in r)
        table[name] = row
    return table


def fmt(value: float | None) -> str:
    return "   -" if value is None else f"{value:.3f}"


def report(
    args: argparse.Namespace,
    conversations: list[Conversation],
    ingestion: dict[str, Any],
    records: list[dict[str, Any]],
    answers: dict[str, Any] | None,
    model: str,
    total_s: float,
) -> dict[str, Any]:
    cutoffs = args.k
    table = summarise(records, cutoffs)
    latencies = [r["latency_ms"] for r in records]
    skipped = sum(len(r["skipped_evidence"]) for r in records)
    no_evidence = sum(1 for r in records if not r["evidence"])
    events = ingestion["events"]
    print(
        f"LoCoMo memory quality: {len(conversations)} conversations "
        f"({', '.join(c.sample_id for c in conversations)}), model {model}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    print(
        f"ingestion: {events} events ({ingestion['sessions']} sessions) published in "
        f"{ingestion['published_s']:.2f} s; stored in {ingestion['stored_s']:.2f} s "
        f"({events / ingestion['stored_s']:.1f} events/s), visible to search in "
        f"{ingestion['searchable_s']:.2f} s, summarised in {ingestion['summarised_s']:.2f} s"
    )
    counters = ingestion["counters"]
    print(
        f"memory service during ingestion: handled {counters['events_handled']}, "
        f"duplicates {counters['duplicates_skipped']}, dropped {counters['events_dropped']}, "
        f"retried {counters['events_retried']}, dead letters {ingestion['dead_letters']}, "
        f"summary calls {counters['summary_calls']} ({counters['summary_failures']} failures)"
    )
    print(
        f"search: k={max(cutoffs)}, latency p50 {percentile(latencies, 50):.1f} ms, "
        f"p99 {percentile(latencies, 99):.1f} ms (n={len(latencies)}); evidence ids skipped "
        f"(no such turn): {skipped}; questions without usable evidence: {no_evidence}"
    )
    if answers is not None:
        print(
            f"answers: {answers['asked']} chats, latency p50 {answers['p50_ms']:.1f} ms, "
            f"p99 {answers['p99_ms']:.1f} ms; F1 as LoCoMo scores it ({STEMMER})"
        )
    header = f"{'category':<16}{'questions':>10}" + "".join(f"{f'R@{k}':>8}" for k in cutoffs)
    print(header + f"{'F1':>8}")
    for name, row in table.items():
        counts = f"{row['scored']}/{row['questions']}"
        cells = "".join(f"{fmt(row[f'recall@{k}']):>8}" for k in cutoffs)
        print(f"{name:<16}{counts:>10}{cells}{fmt(row['f1']):>8}")
    print(f"total run time {total_s:.1f} s")
    return {
        "data": str(args.data),
        "model": model,
        "pairing": args.pairing,
        "speaker_names": not args.no_speaker_names,
        "stemmer": STEMMER,
        "ingestion": ingestion,
        "search_latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
        "answers": answers,
        "skipped_evidence": skipped,
        "questions_without_evidence": no_evidence,
        "table": table,
        "total_s": total_s,
        "questions": records,
        "turns": {
            c.sample_id: {
                dia: {"turn_id": c.turn_of[dia], "speaker": t["speaker"], "text": render(t, True)}
                for dia, t in c.turns.items()
            }
            for c in conversations
        },
    }


def main(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    conversations = load(args.data, pairing=args.pairing, with_speaker=not args.no_speaker_names)
    if args.sample_id:
        conversations = [c for c in conversations if c.sample_id in args.sample_id]
    if args.conversations is not None:
        conversations = conversations[: args.conversations]
    if not conversations:
        raise SystemExit("no conversation selected")
    if max(args.k) > 50 or min(args.k) < 1:
        raise SystemExit("--k: the search route answers 1..50 results")
    busy = busy_ports()
    if busy:
        raise SystemExit(f"ports in use: {busy}; this benchmark starts its own system on them")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory() as home:
        log_path = args.service_log or Path(home) / "daca-up.log"
        system = System(home, log_path)
        try:
            with httpx.Client(timeout=60, trust_env=False) as client:
                system.ready(client)
                model = client.get(f"{CHAT}/healthz").json()["model"]
                ingestion = ingest(client, conversations)
                records = evaluate_search(client, conversations, args.k)
                answers = None
                if not args.skip_answers:
                    answers = evaluate_answers(client, conversations, records)
                total = time.perf_counter() - began
                result = report(args, conversations, ingestion, records, answers, model, total)
        except BaseException:
            print(f"failed; the services' log is {log_path}:", file=sys.stderr)
            sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
            raise
        finally:
            system.stop()
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
        print(f"details written to {args.json}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a LoCoMo JSON file (locomo10.json's format)")
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10], help="recall cutoffs")
    parser.add_argument("--conversations", type=int, help="only the first N conversations")
    parser.add_argument("--sample-id", action="append", help="only this conversation (repeat)")
    parser.add_argument("--skip-answers", action="store_true", help="no chat, no F1")
    parser.add_argument("--json", type=Path, help="write figures and per-question details")
    parser.add_argument("--pairing", choices=["speaker-a", "first"], default="speaker-a")
    parser.add_argument("--no-speaker-names", action="store_true")
    parser.add_argument("--service-log", type=Path, help="keep the services' output here")
    main(parser.parse_args())
