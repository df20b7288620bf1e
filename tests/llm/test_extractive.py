"""The offline model's text helpers."""

from __future__ import annotations

import pytest

from daca.llm.extractive import (
    best_match,
    content_words,
    is_personal_statement,
    merge_facts,
    split_sentences,
    stem,
)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["plan", "plans", "planned", "planning"], "plan"),
        (["like", "likes", "liked", "liking"], "lik"),
        (["go", "goes", "going"], "go"),
        (["city", "cities"], "city"),
    ],
)
def test_stemming_folds_common_suffixes(words: list[str], expected: str) -> None:
    assert {stem(word) for word in words} == {expected}


def test_content_words_skip_stopwords_and_contractions() -> None:
    assert content_words("Where was I planning to go tomorrow?") == {"plan", "go", "tomorrow"}
    assert content_words("I\u2019m planning to go to SF") == {"plan", "go", "sf"}


def test_best_match_needs_enough_overlap_and_prefers_the_newest() -> None:
    facts = [
        "I'm planning to go to SF tomorrow.",
        "I like tea.",
        "I'm planning to go to LA tomorrow.",
    ]
    assert best_match("Where was I planning to go tomorrow?", facts) == facts[2]
    assert best_match("Where do I go swimming?", facts) is None
    assert best_match("What do I like?", facts) == "I like tea."


def test_questions_are_never_answers() -> None:
    assert best_match("Where am I going tomorrow?", ["Where am I going tomorrow?"]) is None


def test_personal_statements_are_first_person_facts() -> None:
    assert is_personal_statement("My name is Ana.")
    assert is_personal_statement("I'm planning to go to SF tomorrow.")
    assert not is_personal_statement("The weather is nice.")
    assert not is_personal_statement("Do I like tea?")
    assert not is_personal_statement("Thanks, I appreciate it.")


def test_merge_dedupes_refreshes_and_drops_the_oldest() -> None:
    merged = merge_facts(["My name is Ana.", "I like tea"], ["I like tea!", "I live in Porto."],
                         max_facts=3, max_chars=1000)  # fmt: skip
    assert merged == ["My name is Ana.", "I like tea!", "I live in Porto."]
    bounded = merge_facts(["I like tea."], ["I live in Porto."], max_facts=1, max_chars=1000)
    assert bounded == ["I live in Porto."]
    assert merge_facts(["a" * 50 + "."], ["I live in Porto."], max_facts=5, max_chars=30) == [
        "I live in Porto."
    ]


def test_sentences_split_on_terminal_punctuation() -> None:
    assert split_sentences(" One. Two!  Three? ") == ["One.", "Two!", "Three?"]
