"""The voice agent: a question (spoken or typed) answered in text and aloud, each sentence spoken as soon as it
is complete."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from voicerag.answer.types import Answer
from voicerag.config import SearchMode
from voicerag.errors import InvalidInput
from voicerag.events import Audio, Delta, Done, Fallback, VoiceEvent
from voicerag.pipeline import Pipeline
from voicerag.speech.listening import spoken_pieces
from voicerag.speech.service import SpeechService
from voicerag.speech.stt import Transcript
from voicerag.speech.tts import Speech, join_speech
from voicerag.speech.vocabulary import names_in, prompt_of

_END = object()


class VoiceAgent:
    """Answers questions aloud: the answer's sentences are spoken as soon as each is complete, while the
    rest of the answer is still being written."""

    VOCABULARY_CHUNKS = 4000  # the names of a large collection are read from an even sample of its chunks

    def __init__(self, pipeline: Pipeline, speech: SpeechService):
        self.pipeline = pipeline
        self.speech = speech
        self._prompts: dict[tuple[tuple[str, int], ...], str | None] = {}

    async def speech_prompt(self, collections: list[str]) -> str | None:
        """The names the collections' documents use (``speech/vocabulary.py``), as the recogniser's prompt: a
        spoken question about them is then heard with their spellings. Read once per generation, off the loop."""
        states = await self.pipeline.states(collections)
        key = tuple(sorted((name, state.generation) for name, state in states.items()))
        if key not in self._prompts:
            texts = [
                f"{info.title}. {info.text or ''}"
                for state in states.values()
                for info in _even_sample(list(state.chunks.values()), self.VOCABULARY_CHUNKS)
            ]
            names = await asyncio.to_thread(names_in, texts)
            if len(self._prompts) >= 64:  # the oldest set of collections and generations goes
                self._prompts.pop(next(iter(self._prompts)))
            self._prompts[key] = prompt_of(names)
        return self._prompts[key]

    async def answer_events(
        self,
        question: str,
        collections: list[str],
        mode: SearchMode | None = None,
        k: int | None = None,
        timings: dict[str, float] | None = None,
        speak: bool = True,
    ) -> AsyncIterator[VoiceEvent]:
        """Events: ``Sources``, ``Delta``, ``Fallback`` (the text as the pipeline streams it), ``Audio`` (each spoken
        sentence), then ``Done`` with the turn's timings."""
        timings = {} if timings is None else timings
        started = time.perf_counter()
        out: asyncio.Queue[Any] = asyncio.Queue()
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        result: dict[str, Answer] = {}

        budget = self.speech.settings.voice_max_spoken_chars
        spoken = 0
        namespace = "collections:" + ",".join(sorted(set(collections)))  # answers' audio stays with their sources

        async def say_next(pieces: list[str]) -> None:
            """Queue sentences for speech until the spoken budget is used (the text answer stays whole)."""
            nonlocal spoken
            for sentence in pieces:
                if spoken >= budget:
                    return
                spoken += len(sentence)
                await sentences.put(sentence)

        async def write() -> None:
            text, queued = "", 0
            try:
                async for event in self.pipeline.ask_stream(question, collections, mode, k):
                    if isinstance(event, Done):
                        result["answer"] = event.answer
                        text = event.answer.text
                        break
                    if isinstance(event, Delta):
                        text += event.text
                    elif isinstance(event, Fallback):
                        text, queued = event.text, 0
                    await out.put(event)
                    complete = spoken_pieces(text, True, self.speech.settings.voice_first_piece_chars) if speak else []
                    await say_next(complete[queued:])
                    queued = max(queued, len(complete))
                if speak:
                    await say_next(
                        spoken_pieces(text, first_chars=self.speech.settings.voice_first_piece_chars)[queued:]
                    )
            except BaseException as exc:
                await out.put(exc)
                raise
            finally:
                await sentences.put(None)
                await out.put(_END)

        async def say() -> None:
            index = 0
            try:
                while (sentence := await sentences.get()) is not None:
                    speech, hit = await self.speech.speak_sentence(sentence, namespace=namespace)
                    if index == 0:
                        timings["tts_first_audio"] = round((time.perf_counter() - started) * 1000, 3)
                    await out.put(Audio(index, sentence, speech, hit))
                    index += 1
            except BaseException as exc:
                await out.put(exc)
                raise
            finally:
                await out.put(_END)

        tasks = [asyncio.create_task(write()), asyncio.create_task(say())]
        try:
            ended = 0
            while ended < len(tasks):
                item = await out.get()
                if item is _END:
                    ended += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
            timings["answer_and_speech"] = round((time.perf_counter() - started) * 1000, 3)
            answer = result["answer"]
            for stage, ms in answer.timings_ms.items():  # search, embed, generate...: the answer's own stages
                timings["answer" if stage == "total" else stage] = ms
            yield Done(answer, timings)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def ask_aloud(
        self,
        audio_file: bytes,
        collections: list[str],
        mode: SearchMode | None = None,
        k: int | None = None,
        language: str | None = None,
        timings: dict[str, float] | None = None,
    ) -> tuple[Transcript, dict[str, Any], Speech]:
        """A recorded question (any audio file) -> its transcript, the answer (JSON) and the spoken answer."""
        timings = {} if timings is None else timings
        prompt = await self.speech_prompt(collections)  # an unknown collection fails here, before the model runs
        transcript = await self.speech.transcribe_file(audio_file, language, timings, prompt)
        if not transcript.text:
            raise InvalidInput(
                "no speech was recognised in the audio; record the question again, closer to the microphone"
            )
        pieces: list[Speech] = []
        answer: dict[str, Any] = {}
        async for event in self.answer_events(transcript.text, collections, mode, k, timings):
            if isinstance(event, Audio):
                pieces.append(event.speech)
            elif isinstance(event, Done):
                answer = event.answer.to_json()
        return transcript, answer, join_speech(pieces)


def _even_sample(items: list[Any], count: int) -> list[Any]:
    return items if len(items) <= count else [items[i * len(items) // count] for i in range(count)]
