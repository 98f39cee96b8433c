"""Answers from retrieved passages: the configured reasoner answers, citing passages as [n]; every [n] is checked
and every answer lists its sources with document, page and span."""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field

from docintel.settings import Settings, get_settings
from models.backends import reasoner
from models.base import Passage
from tasks.search import Hit, SearchFilters, search

NOTHING_FOUND = "The ingested documents do not contain a passage that answers this question."
_MARKER = re.compile(r"\[(\d+)\]")


@dataclass
class Source:
    number: int
    source: str
    document_id: str
    page: int
    start: int
    end: int
    passage: str


@dataclass
class Answer:
    question: str
    answer: str
    backend: str
    sources: list[Source] = field(default_factory=list)
    reasoning: str = ""
    invalid_citations: list[int] = field(default_factory=list)  # [n] markers that name no passage
    latency_ms: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def passages_from_hits(hits: list[Hit]) -> list[Passage]:
    return [Passage(number=i, source=hit.source, page=hit.page, text=hit.text) for i, hit in enumerate(hits, 1)]


def answer_question(
    question: str, k: int | None = None, filters: SearchFilters | None = None, settings: Settings | None = None
) -> Answer:
    settings = settings or get_settings()
    started = time.perf_counter()
    hits = search(question, k, filters, settings)
    backend = reasoner(settings)
    if not hits:
        return Answer(question, NOTHING_FOUND, backend.name, latency_ms=(time.perf_counter() - started) * 1000)
    result = backend.answer(question, passages_from_hits(hits))
    cited = [int(n) for n in _MARKER.findall(result.answer)]
    valid = [n for n in dict.fromkeys(cited) if 1 <= n <= len(hits)]
    sources = [
        Source(n, hits[n - 1].source, hits[n - 1].document_id, hits[n - 1].page, hits[n - 1].start, hits[n - 1].end,
               hits[n - 1].text)
        for n in valid
    ]  # fmt: skip
    return Answer(
        question=question,
        answer=result.answer.strip() or NOTHING_FOUND,
        backend=backend.name,
        sources=sources,
        reasoning=result.reasoning,
        invalid_citations=sorted({n for n in cited if n not in valid}),
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
    )
