"""The end-of-turn model: words that cannot end a question read unfinished; finished questions do not."""

from __future__ import annotations

from voicerag.speech.turn_end import finished_probability, turn_features


def test_words_that_cannot_end_a_question_read_less_finished_than_the_question() -> None:
    pairs = [
        ("How do I configure the", "How do I configure the cache?"),
        ("What is the", "What is the default port?"),
        ("Which request headers does the middleware", "Which request headers does the middleware allow?"),
        ("If a background task fails after the response went out, what", "What happens to a failed task?"),
    ]
    for unfinished, finished in pairs:
        assert finished_probability(unfinished) < 0.3 <= finished_probability(finished), (unfinished, finished)


def test_features_read_the_end_of_the_words_and_cost_little() -> None:
    features = turn_features("How do I set the...")
    assert "punct=ellipsis" in features and "last_kind=function" in features and "last=the" in features
    assert turn_features("") == ["bias", "empty"]
    assert 0.0 < finished_probability("") < 1.0
