"""Reading a Prometheus text exposition in tests: every sample by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of ``text`` (the parser reads a counter's samples as ``<name>_total``)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels``; 0 when there is none."""
    return found.get((name, frozenset(labels.items())), 0.0)
