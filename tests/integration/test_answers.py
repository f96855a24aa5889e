"""The answerer says whether it found an answer: grounded sentences when the documents hold one, a plain
"could not find" when they do not (in JSON as found: false), and it prefers prose over headings and code."""

from __future__ import annotations

from voicerag import Document, VoiceRAG
from voicerag.answer.extractive import NO_ANSWER


async def test_found_and_not_found(rag, facts) -> None:
    await rag.ingest("kb", facts)
    answer = await rag.ask("When was the Eiffel Tower completed?", ["kb"])
    assert answer.found and "1889" in answer.text and answer.confidence >= rag.settings.answer_min_confidence
    assert answer.to_json()["found"] is True
    for question in ("What is the capital of Australia?", "How do I bake sourdough bread at home?"):
        missing = await rag.ask(question, ["kb"])
        assert not missing.found and missing.text == NO_ANSWER, (question, missing.text, missing.confidence)
        assert missing.sources  # what was looked at is still shown
        assert missing.confidence < rag.settings.answer_min_confidence
    cached = await rag.ask("What is the capital of Australia?", ["kb"])
    assert cached.cached and not cached.found and cached.text == NO_ANSWER


async def test_a_small_collection_answers_questions_worded_with_words_it_lacks(rag) -> None:
    """In a collection of one short page, "many", "have" or "there" appear nowhere: they must not count as what
    the question asks about (an unseen word weighs the most), or every such question reads unanswered."""
    page = (
        "# Visiting\n\nThe city museum opens at nine in the morning. Tickets are sold at the main entrance.\n\n"
        "## Parking\n\nThe car park behind the museum has two hundred spaces and closes at midnight.\n"
    )
    await rag.ingest("town", [Document("museum.md", page, "Museum")])
    for question in ("How many spaces does the car park have?", "How many parking spaces are there?"):
        answer = await rag.ask(question, ["town"])
        assert answer.found and "two hundred spaces" in answer.text, (question, answer.text, answer.confidence)
    missing = await rag.ask("What is the capital of Peru?", ["town"])
    assert not missing.found, missing.text


HANDBOOK = """# Employee handbook

## Working hours

Our office is open from 8:30 to 17:30, Monday to Friday. Core hours are 10:00 to 15:00; outside them you may
arrange your own schedule with your manager.

## Holidays

Every full-time employee gets 25 days of paid holiday per year, plus public holidays. Part-time staff get a
pro-rata share. Unused days can be carried over into the first quarter of the next year, up to a maximum of five.

## Expenses

Submit expense claims through the Ledger portal within 30 days of the purchase. Receipts are required for any
item above 20 euros. Claims are reimbursed with the next monthly salary payment.

## Equipment

New starters receive a laptop, a headset and a monitor. Lost or damaged equipment must be reported to the IT
desk at it-help@example.com the same day.

## Security

Passwords must be at least 14 characters long and are rotated every 180 days. Two-factor authentication is
mandatory for email and the VPN.
"""


async def test_a_question_worded_unlike_a_small_collection_is_still_answered(rag) -> None:
    """Words a question uses that a small collection never holds ("email", "address") weigh no more than its
    rarest word: otherwise they outweigh every word it does hold, and the answer reads as missing."""
    await rag.ingest("staff", [Document("handbook.md", HANDBOOK, "Employee handbook")])
    answer = await rag.ask("What is the IT desk email address?", ["staff"])
    assert answer.found and "it-help@example.com" in answer.text, (answer.text, answer.confidence)


async def test_the_best_sentence_is_read_first(rag) -> None:
    """A second sentence from earlier in the same chunk does not go before the one that answers: a listener
    hears the opening words most. Neighbouring sentences keep the document's order."""
    await rag.ingest("staff", [Document("handbook.md", HANDBOOK, "Employee handbook")])
    answer = await rag.ask("How many holiday days do I get?", ["staff"])
    assert answer.found and answer.text.startswith("Every full-time employee gets 25 days"), answer.text


async def test_answers_are_sentences_not_headings_or_code(rag) -> None:
    text = (
        "# Running the tests\n\n"
        "```sh\nexport X=1\nmake lint\n```\n\n"
        "Run make test to install the dev dependencies and run the whole test suite. "
        "The suite needs PostgreSQL and Redis for some tests."
    )
    await rag.ingest("docs", [Document("dev.md", text, "Development")])
    answer = await rag.ask("How do I run the tests?", ["docs"])
    assert answer.found and "make test" in answer.text
    assert "```" not in answer.text and "# Running" not in answer.text


async def test_a_question_in_two_parts_is_answered_from_both_documents(rag) -> None:
    """The second sentence answers the part of the question the first leaves out, from another document,
    rather than repeating the first one's subject."""
    museum = (
        "The city museum opens at nine in the morning on weekdays. "
        "The museum shop opens at nine in the morning as well. "
        "The museum cafe on the ground floor opens at noon."
    )
    library = (  # long, so it scores well below the museum's sentences: only what it adds gets it chosen
        "The public library moved to the old post office building in 2019 and now lends films, music and board "
        "games as well as books to everyone who lives in the district, and it opens its doors at ten, Monday to "
        "Saturday."
    )
    await rag.ingest("town", [Document("museum.md", museum, "Museum"), Document("library.md", library, "Library")])
    answer = await rag.ask("When do the museum and the library open?", ["town"])
    assert answer.found
    assert "library" in answer.text and "opens its doors at ten" in answer.text, answer.text  # the other part
    assert "museum" in answer.text and "opens at nine" in answer.text, answer.text


async def test_a_sentence_that_only_sets_the_question_up_brings_the_one_that_answers(rag) -> None:
    """Documentation asks its own question and answers it in the next sentence (a FAQ), or describes the
    situation, asks "How do I ...?" and then names the option: the answer carries the sentence that answers."""
    faq = (
        "# Counters\n\nYou can use strings as atomic counters with INCR and INCRBY. "
        "What does it mean that INCR is atomic? That even several clients issuing INCR against the same key "
        "never enter a race condition. The final value is always the sum of the increments.\n\n"
        "# Expansion on Windows\n\nNote that I used single quotes above, so my shell is not expanding the "
        "environment variable, the library does. How do I get it to not expand it? Pass windows_expand_args=False "
        "when calling the command line interface."
    )
    await rag.ingest("faq", [Document("faq.md", faq, "FAQ")])
    atomic = await rag.ask("What does it mean that INCR is atomic?", ["faq"])
    assert atomic.found and "race condition" in atomic.text, atomic.text
    expand = await rag.ask("My single-quoted variables get expanded on Windows. How do I stop that?", ["faq"])
    assert expand.found and "windows_expand_args=False" in expand.text, expand.text


class CountingEmbedder:
    """The real embedder, counting the texts each call embeds."""

    def __init__(self, embedder) -> None:
        self.inner, self.texts = embedder, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def embed(self, texts):
        self.texts.extend(texts)
        return await self.inner.embed(texts)

    def embed_sync(self, texts):
        self.texts.extend(texts)
        return self.inner.embed_sync(texts)


GUIDE = Document(
    "guide.md",
    "# Middleware\n\nThe following arguments are supported:\n\n- minimum_size - Responses smaller than this minimum "
    "size are not compressed. Defaults to 500.\n\n- compresslevel - The compression level. Defaults to 9.\n\n"
    "To keep the test client from raising server errors, create it like this:\n\n"
    "```\nclient = TestClient(app, raise_server_exceptions=False)\n```\n\n" + "Padding words. " * 60,
    "Guide",
)


async def test_the_answer_step_reads_unit_vectors_stored_at_ingest(rag) -> None:
    """Ingest stores each chunk's unit vectors (from its own embedding pass); answering reads them, so the
    answer step embeds nothing (the search embedded the question)."""
    await rag.ingest("kb", [GUIDE])
    counting = CountingEmbedder(rag.pipeline.embedder)
    rag.pipeline.embedder = counting
    sources = await rag.pipeline.search(
        "What is the default minimum size for compressing responses?", ["kb"], use_cache=False
    )
    extract = await rag.pipeline.extract(
        "What is the default minimum size for compressing responses?", sources, use_cache=False
    )
    assert counting.texts == []  # no unit was embedded to answer
    assert extract.found and "Defaults to 500" in extract.text
    howto = await rag.ask("How do I stop the test client raising server errors?", ["kb"])
    assert "raise_server_exceptions=False" in howto.text  # the lead carries its code


async def test_an_uncached_ask_embeds_its_question_once_even_with_the_caches_off(make_settings) -> None:
    """The search makes the question's vector and hands it to the answer step: nothing is embedded twice,
    whether or not the embedding cache could have carried it between them."""
    for cache_enabled in (False, True):
        async with await VoiceRAG.open(make_settings(cache_enabled=cache_enabled)) as rag:
            await rag.ingest("kb", [GUIDE])
            counting = CountingEmbedder(rag.pipeline.embedder)
            rag.pipeline.embedder = counting
            worker = rag.retriever.worker  # the search embeds on the retrieval worker
            worker.embed, worker.embed_sync = counting.embed, counting.embed_sync
            question = "What is the default minimum size for compressing responses?"
            answer = await rag.ask(question, ["kb"])
            assert answer.found and "Defaults to 500" in answer.text
            assert counting.texts == [question], (cache_enabled, counting.texts)


async def test_a_store_without_unit_vectors_still_answers(backend_settings) -> None:
    """A store written before unit vectors (or a recipe they no longer match) answers by embedding them."""
    from sqlalchemy import delete

    from voicerag import VoiceRAG
    from voicerag.documents.tables import chunk_units

    async with await VoiceRAG.open(backend_settings()) as rag:
        await rag.ingest("kb", [GUIDE])
        async with rag.pools.engine.begin() as conn:
            await conn.execute(delete(chunk_units))
    async with await VoiceRAG.open(backend_settings()) as rag:
        counting = CountingEmbedder(rag.pipeline.embedder)
        rag.pipeline.embedder = counting
        answer = await rag.ask("What is the default minimum size for compressing responses?", ["kb"])
        assert answer.found and "Defaults to 500" in answer.text
        assert len(counting.texts) > 1  # the units were embedded at ask time


async def test_a_live_change_during_a_request_never_files_its_answer_under_the_other_value(make_settings) -> None:
    """The answer cache key and the extraction read one answerer: a change of ``answer_sentences`` between them
    (here, right after the sources) neither reaches that request nor files its answer under the wrong key."""
    from voicerag import VoiceRAG
    from voicerag.events import Done, Sources

    text = " ".join(f"Fact number {i} about the tower is worth knowing." for i in range(40))
    question = "Which facts about the tower are worth knowing?"
    async with await VoiceRAG.open(make_settings(answer_sentences=10)) as rag:
        await rag.ingest("kb", [Document("t", text, "Tower")])
        during = None
        async for event in rag.pipeline.ask_stream(question, ["kb"]):
            if isinstance(event, Sources):
                rag.live.apply({"answer_sentences": 1}, by="test")
            elif isinstance(event, Done):
                during = event.answer
        assert during is not None and during.text.count("Fact number") > 1  # the request kept its 10
        after = await rag.ask(question, ["kb"])
        assert not after.cached and after.text.count("Fact number") == 1
        rag.live.apply({"answer_sentences": 10}, by="test")
        again = await rag.ask(question, ["kb"])
        assert again.cached and again.text == during.text
