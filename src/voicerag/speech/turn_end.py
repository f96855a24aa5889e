"""Is the turn over? Whether the words heard so far read as a finished question or request.

A logistic model over a handful of features of the transcript's end (Whisper's closing punctuation, the last word
and word pair, whether the last word is a closed-class word that cannot end a sentence, whether a question has
reached its verb). It was fit by
``scripts/fit_turn_end.py`` on finished questions and statements against their own prefixes, all spoken by Piper and
transcribed by this project's Whisper (``scripts/make_turn_end_data.py``); its weights are the package file
``speech/assets/turn_end.json``. A check costs a few microseconds.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from importlib import resources

# Closed-class words: a sentence rarely ends on one ("How do I configure the", "What happens if").
_FUNCTION_WORDS = """
    a an the this that these those my your our their its his her some any no every each all both either neither
    of to in on at by for with from into onto about over under between through during after before without within
    against among via per than as and or but nor so if when while whether because unless until although though
    where which who whom whose what why how is are was were be been being am do does did have has had can could
    shall should will would may might must not i you he she it we they me him us them there here very more most
    less least such like just also then"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())

# fmt: off
_QUESTION_WORDS = frozenset((
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how",
    "is", "are", "do", "does", "did", "can", "could", "should",
))
_AUXILIARIES = frozenset((
    "is", "are", "was", "were", "be", "do", "does", "did", "can", "could", "should", "would", "will", "shall", "may",
    "might", "must", "has", "have", "had", "'s",
))
# fmt: on
_WORD = re.compile(r"[a-z0-9']+")


def turn_features(text: str) -> list[str]:
    """The features the model reads: names of indicator features (present = 1)."""
    words = _WORD.findall(text.lower())
    if not words:
        return ["bias", "empty"]
    stripped = text.rstrip()
    if stripped.endswith(("...", "…")):
        punct = "ellipsis"
    else:
        punct = {"?": "question", ".": "period", "!": "period", ",": "comma", "-": "dash"}.get(stripped[-1:], "none")
    last = words[-1]
    kind = "function" if last in FUNCTION_WORDS else "number" if last.isdigit() else "content"
    # no length feature: a prefix is shorter than its question by construction, which says nothing of a real turn
    features = ["bias", f"punct={punct}", f"last_kind={kind}", f"punct+kind={punct}+{kind}"]
    features += [f"last={last}", f"first={words[0]}"]
    if len(words) > 1:
        before = "function" if words[-2] in FUNCTION_WORDS else "content"
        features += [f"last2={words[-2]} {last}", f"kinds={before}+{kind}"]
    if words[0] in _QUESTION_WORDS:  # a question that has not reached its verb yet ("What museum in Newcastle")
        has_verb = any(word in _AUXILIARIES or word.endswith("ed") for word in words[1:])
        features.append(f"question+verb={has_verb}")
    return features


@lru_cache(maxsize=1)
def _weights() -> dict[str, float]:
    path = resources.files("voicerag.speech") / "assets" / "turn_end.json"
    return dict(json.loads(path.read_text())["weights"])


def finished_probability(text: str) -> float:
    """The probability that a speaker who said ``text`` and then paused has finished their turn."""
    weights = _weights()
    score = sum(weights.get(name, 0.0) for name in turn_features(text))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, score))))
