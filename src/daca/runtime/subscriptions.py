"""Subscriptions as the app declares them (``GET /dapr/subscribe``), merged with the declarative
ones, and the route an event takes: the first ``routes.rules`` entry whose ``match`` holds, else
the default; a match that cannot be evaluated is an error for the event (see :class:`Router`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from daca.runtime.cel import Match, MatchError, cel_event, compile_match
from daca.runtime.resources import BulkSubscribe, RouteRule, SubscriptionSpec

logger = logging.getLogger(__name__)


class Router:
    """Chooses the route of an event from a subscription's rules and default, as daprd's
    ``findMatchingRoute`` (``pkg/runtime/subscription/subscription.go``) does."""

    def __init__(self, spec: SubscriptionSpec) -> None:
        self._spec = spec
        self._rules: list[tuple[Match, str]] = [
            (compile_match(rule.match), rule.path) for rule in spec.rules
        ]
        self._default = spec.default_route

    def route(self, envelope: Mapping[str, Any]) -> str | None:
        """The path of the first rule that holds, else the default (``None`` when there is none).

        A rule whose match fails (a missing field, a result that is no bool) raises
        :class:`MatchError` without trying the later rules: daprd's ``matchRoutingRule`` returns
        that error, and the event goes to the dead-letter topic or stays with the broker.
        """
        if not self._rules:
            return self._default
        try:
            event = cel_event(envelope)
            path = next((path for match, path in self._rules if match(event)), self._default)
        except MatchError as exc:
            logger.error(
                "error finding matching route for event %s in pubsub %s and topic %s: %s",
                envelope.get("id"),
                self._spec.pubsubname,
                self._spec.topic,
                exc,
            )
            raise
        return path


def parse_programmatic(entries: object) -> list[SubscriptionSpec]:
    """``GET /dapr/subscribe`` entries as subscriptions; bad entries are logged and skipped."""
    if not isinstance(entries, list):
        logger.error("GET /dapr/subscribe did not answer a JSON array; no subscriptions taken")
        return []
    specs = [_programmatic_entry(entry) for entry in entries]
    return [spec for spec in specs if spec is not None]


def _programmatic_entry(entry: object) -> SubscriptionSpec | None:
    if not isinstance(entry, dict) or not entry.get("pubsubname") or not entry.get("topic"):
        logger.warning("GET /dapr/subscribe entry without pubsubname/topic skipped: %r", entry)
        return None
    routes = entry.get("routes") or {}
    rules = tuple(
        RouteRule(match=str(rule.get("match", "")), path=str(rule["path"]))
        for rule in routes.get("rules") or []
        if isinstance(rule, dict) and rule.get("path")
    )
    default = routes.get("default") or entry.get("route") or None
    if not rules and not default:
        logger.warning("subscription to %s has no route; skipped", entry["topic"])
        return None
    bulk = _bulk_subscribe(entry.get("bulkSubscribe"))
    if bulk is None:
        topic = entry["topic"]
        logger.error("subscription to %s: bulkSubscribe limits must be >= 0; skipped", topic)
        return None
    spec = SubscriptionSpec(
        pubsubname=str(entry["pubsubname"]),
        topic=str(entry["topic"]),
        rules=rules,
        default_route=default,
        dead_letter_topic=entry.get("deadLetterTopic") or None,
        metadata={str(k): str(v) for k, v in (entry.get("metadata") or {}).items()},
        type="PROGRAMMATIC",
        bulk_subscribe=bulk,
    )
    try:
        Router(spec)
    except ValueError as exc:
        logger.error("subscription to %s skipped: %s", spec.topic, exc)
        return None
    return spec


def _bulk_subscribe(given: object) -> BulkSubscribe | None:
    """An entry's ``bulkSubscribe`` object (camelCase keys); ``None`` when a limit is negative."""
    if not isinstance(given, dict):
        return BulkSubscribe()
    count, wait = given.get("maxMessagesCount") or 0, given.get("maxAwaitDurationMs") or 0
    if not isinstance(count, int) or not isinstance(wait, int) or count < 0 or wait < 0:
        return None
    return BulkSubscribe(bool(given.get("enabled")), count, wait)


def merge_subscriptions(
    declarative: list[SubscriptionSpec], programmatic: list[SubscriptionSpec]
) -> list[SubscriptionSpec]:
    """One subscription per (pubsub, topic); a programmatic one replaces a declarative one."""
    merged = {(spec.pubsubname, spec.topic): spec for spec in declarative}
    for spec in programmatic:
        key = (spec.pubsubname, spec.topic)
        if key in merged and merged[key].type == "DECLARATIVE":
            logger.warning("programmatic subscription to %s/%s replaces the declarative one", *key)
        merged[key] = spec
    return list(merged.values())
