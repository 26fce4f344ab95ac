"""Sentences inside sentences: the app's messages quote other messages as one sentence."""

from __future__ import annotations

import pytest

from krea_desktop.wording import listed, within


@pytest.mark.parametrize(
    ("sentence", "inside"),
    [
        ("The API key was not accepted; check it.", "the API key was not accepted; check it"),
        ("API keys hold no spaces.", "API keys hold no spaces"),  # an acronym keeps its capitals
        ("  The service is busy right now.  ", "the service is busy right now"),
        ("", ""),
    ],
)
def test_a_sentence_quoted_inside_another_loses_its_capital_and_its_full_stop(sentence: str, inside: str) -> None:
    assert within(sentence) == inside


def test_a_list_in_words() -> None:
    assert [listed(items) for items in (["seed"], ["seed", "quality"], ["a", "b", "c"])] == [
        "seed",
        "seed and quality",
        "a, b and c",
    ]
