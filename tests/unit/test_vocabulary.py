"""A collection's names for the speech recogniser: capitalised words used inside sentences that are not
everyday English words."""

from voicerag.speech.vocabulary import names_in, prompt_of


def test_names_are_the_unusual_capitalised_words_used_inside_sentences() -> None:
    texts = [
        "Using Starlette, a request goes through the CORSMiddleware first. Returns a response.",
        "Starlette runs sync endpoints in a thread pool. Use CORSMiddleware to allow other origins.",
        "# Default settings\n\nThe defaults come from Starlette. Hello from Windows and Windows again.",
        "Pydantic validates once.",  # in one text only: not a name of the collection yet
    ]
    names = names_in(texts)
    # each inside a sentence in two texts (a sentence's first word does not count: "Starlette runs ...")
    assert sorted(names) == ["CORSMiddleware", "Starlette"]
    assert not {"Using", "Returns", "Default", "Hello", "Windows", "Pydantic"} & set(names)
    assert prompt_of(["Starlette", "CORSMiddleware"]) == "Starlette, CORSMiddleware." and prompt_of([]) is None
