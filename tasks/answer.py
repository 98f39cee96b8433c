"""Answers from retrieved passages that a reader can check.

- The configured reasoner answers, citing passages as [n]; every [n] is checked to name a passage.
- When retrieval finds nothing relevant (no passage close enough to the question, by embedding similarity and by
  shared words), the answer says so instead of guessing, and no reasoner is asked.
- Grounding: each answer sentence is checked against the passages it cites (all passages when it cites none): it is
  ``supported`` when enough of its content words appear in one of them, or fewer but the passage's embedding is
  close to the sentence's. Unsupported sentences are listed in ``grounding`` and counted in ``unsupported``.
- Sources list document, page, the passage's span in the document and page text, and its headings.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from docintel.settings import Settings, get_settings
from models.backends import embedder, reasoner
from models.base import Passage, Reasoner
from models.extractive import EXTRACTIVE_LABEL, content_words
from tasks.search import Hit, SearchFilters, search_with_details

NOTHING_FOUND = "The ingested documents do not contain a passage that answers this question."
NOTHING_RELEVANT = (
    "No passage in the ingested documents is relevant enough to answer this question, so no answer is given. "
    "The closest passages are listed as sources for a manual check."
)
_MARKER = re.compile(r"\[(\d+)\]")
_SENTENCE = re.compile(r"(?<=[.!?])(?:\s*\[\d+\])*\s+(?=[A-Z(\"“\[])|\n+")


@dataclass
class Source:
    number: int
    source: str
    document_id: str
    page: int
    start: int  # span of the passage in the document text
    end: int
    passage: str
    page_start: int = 0  # span of the passage in its page's text
    page_end: int = 0
    heading: str = ""


@dataclass
class SentenceCheck:
    sentence: str
    supported: bool
    passages: list[int]  # the passages it cites ([n]); empty when it cites none
    best_passage: int = 0  # the passage that supports it best
    overlap: float = 0.0  # share of the sentence's content words found in that passage
    similarity: float = 0.0  # cosine similarity of sentence and passage embeddings


@dataclass
class Answer:
    question: str
    answer: str
    backend: str
    sources: list[Source] = field(default_factory=list)
    reasoning: str = ""
    invalid_citations: list[int] = field(default_factory=list)  # [n] markers that name no passage
    latency_ms: float = 0.0
    extractive: bool = False  # the answer is sentences copied from the passages, not a model's words
    relevant: bool = True  # False: retrieval found nothing relevant and the answer says so
    grounding: list[SentenceCheck] = field(default_factory=list)
    unsupported: int = 0  # answer sentences no cited passage supports
    notes: list[str] = field(default_factory=list)  # what query handling did (scoped document, dropped phrase...)

    def to_json(self) -> dict:
        return asdict(self)


def passages_from_hits(hits: list[Hit]) -> list[Passage]:
    return [Passage(number=i, source=hit.source, page=hit.page, text=hit.text) for i, hit in enumerate(hits, 1)]


def _source(number: int, hit: Hit) -> Source:
    return Source(number, hit.source, hit.document_id, hit.page, hit.start, hit.end, hit.text, hit.page_start,
                  hit.page_end, hit.heading)  # fmt: skip


def relevance(question: str, hits: list[Hit]) -> tuple[float, float]:
    """(best cosine similarity of a passage to the question, best share of the question's content words in one)."""
    words = content_words(question)
    overlap = max((len(words & content_words(hit.text)) / len(words) for hit in hits), default=0.0) if words else 0.0
    return max((hit.similarity for hit in hits), default=0.0), overlap


def is_relevant(question: str, hits: list[Hit], settings: Settings) -> bool:
    similarity, overlap = relevance(question, hits)
    enough_words = len(content_words(question)) >= 3  # one or two words overlap by chance
    return similarity >= settings.answer_min_similarity or (enough_words and overlap >= settings.answer_min_overlap)


def answer_sentences(answer: str) -> list[str]:
    """The sentences of an answer (with their [n] markers), without the extractive label."""
    body = answer.replace(EXTRACTIVE_LABEL, "")
    return [s.strip() for s in _SENTENCE.split(body) if s and s.strip() and content_words(_MARKER.sub("", s))]


def _passage_vectors(hits: list[Hit], settings: Settings) -> dict[int, np.ndarray]:
    from tasks.store import CHUNKS, open_store

    table = open_store(settings.db_uri).table(CHUNKS)
    if table is None or not hits:
        return {}
    ids = ", ".join(f"'{hit.chunk_id}'" for hit in hits)
    rows = table.search().where(f"chunk_id IN ({ids})").select(["chunk_id", "vector"]).limit(len(hits)).to_list()
    by_id = {row["chunk_id"]: np.asarray(row["vector"], dtype=np.float32) for row in rows}
    return {n: by_id[hit.chunk_id] for n, hit in enumerate(hits, 1) if hit.chunk_id in by_id}


def check_grounding(answer: str, hits: list[Hit], settings: Settings) -> list[SentenceCheck]:
    """Each sentence against the passages it cites (every passage when it cites none)."""
    checks = []
    vectors: dict[int, np.ndarray] | None = None
    for sentence in answer_sentences(answer):
        cited = [n for n in dict.fromkeys(int(m) for m in _MARKER.findall(sentence)) if 1 <= n <= len(hits)]
        words = content_words(_MARKER.sub("", sentence))
        candidates = cited or list(range(1, len(hits) + 1))
        best = (0, 0.0, 0.0)
        if words:
            if vectors is None:
                vectors = _passage_vectors(hits, settings)
            sentence_vector = np.asarray(embedder(settings).embed_query(_MARKER.sub("", sentence)), dtype=np.float32)
            for n in candidates:
                overlap = len(words & content_words(hits[n - 1].text)) / len(words)
                similarity = float(sentence_vector @ vectors[n]) if n in vectors else 0.0
                if (overlap, similarity) > best[1:]:
                    best = (n, overlap, similarity)
        n, overlap, similarity = best
        supported = bool(n) and (
            overlap >= settings.answer_support_overlap
            or (overlap >= settings.answer_support_overlap / 2 and similarity >= settings.answer_support_similarity)
        )
        checks.append(SentenceCheck(sentence, supported, cited, n, round(overlap, 3), round(similarity, 3)))
    return checks


def answer_question(
    question: str,
    k: int | None = None,
    filters: SearchFilters | None = None,
    settings: Settings | None = None,
    backend: Reasoner | None = None,
) -> Answer:
    """``backend``: a Reasoner to use instead of the configured one."""
    settings = settings or get_settings()
    started = time.perf_counter()
    found = search_with_details(question, k, filters, settings)
    hits = found.hits
    backend = backend or reasoner(settings)
    extractive = backend.name == "extractive"

    def done(answer: Answer) -> Answer:
        answer.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        answer.notes = found.notes
        return answer

    if not hits:
        return done(Answer(question, NOTHING_FOUND, backend.name, extractive=extractive, relevant=False))
    if not is_relevant(found.retrieval_text, hits, settings):
        closest = [_source(n, hit) for n, hit in enumerate(hits[:3], 1)]
        return done(Answer(question, NOTHING_RELEVANT, backend.name, closest, extractive=extractive, relevant=False))
    # the extractive answerer matches words: give it the question without a clause that only names the document
    result = backend.answer(found.retrieval_text if extractive else question, passages_from_hits(hits))
    text = result.answer.strip()
    if not text:
        return done(Answer(question, NOTHING_FOUND, backend.name, extractive=extractive, relevant=False,
                           reasoning=result.reasoning))  # fmt: skip
    cited = [int(n) for n in _MARKER.findall(text)]
    valid = [n for n in dict.fromkeys(cited) if 1 <= n <= len(hits)]
    grounding = check_grounding(text, hits, settings)
    return done(
        Answer(
            question=question,
            answer=text,
            backend=backend.name,
            sources=[_source(n, hits[n - 1]) for n in valid],
            reasoning=result.reasoning,
            invalid_citations=sorted({n for n in cited if n not in valid}),
            extractive=extractive,
            grounding=grounding,
            unsupported=sum(not check.supported for check in grounding),
        )
    )
