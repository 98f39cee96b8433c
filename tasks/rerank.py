"""Second retrieval stage, embedded default: a lexical and proximity reranker over the fused candidates.

No cross-encoder ships its weights in a PyPI package that runs offline here (the packaged rerankers we looked at
load their models from a hub at run time), so the embedded reranker scores what a lawyer's eye checks first:
- coverage: the IDF-weighted share of the question's terms in the passage (IDF over the candidates),
- proximity: question bigrams found as adjacent words in the passage,
- headings: question terms in the headings the passage sits under ("Specific Performance", "Definitions"),
- definitions: for "definition of X" / "what does X mean", the passage that defines “X”.
These are added to the fused retrieval score (scaled to [0, 1]). benchmarks/retrieval.py measures it on and off.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_TOKEN = re.compile(r"[a-z0-9§]+")
STOPWORDS = frozenset(
    "a an and are as at be by can could did do does for from had has have how i in is it its may must of on or "
    "shall should that the their there these this to under was were what when where which who whom why will with "
    "would you your about any all also into is my me our we us they them than then so such information regarding "
    "there consider".split()
)
_DEFINITION_ASKS = (
    re.compile(r"(?:definition of|meaning of|defin\w*)\s+(?:the\s+)?(?:term\s+)?[\"“]([^\"”]{1,80})[\"”]", re.IGNORECASE),
    re.compile(r"(?:definition of|meaning of)\s+(?:the\s+)?(?:term\s+)?([A-Z][\w&' -]{1,60}?)\s*(?:[?;.]|$)"),
    re.compile(r"what (?:does|do|is meant by)\s+(?:the\s+)?(?:term\s+)?[\"“]?([^\"”?]{1,60}?)[\"”]?\s*mean\b", re.IGNORECASE),
)

W_COVERAGE, W_BIGRAM, W_HEADING, W_DEFINITION = 0.6, 0.3, 0.3, 1.0


def stem(word: str) -> str:
    """A crude prefix stem: legal vocabulary shares long stems (solicit/solicitation, perform/performance)."""
    return word[:6] if len(word) > 6 else word.rstrip("s") if len(word) > 3 else word


_stems: dict[str, str] = {}
_terms_cache: dict[str, list[str]] = {}


def terms(text: str) -> list[str]:
    out = []
    for word in _TOKEN.findall(text.lower()):
        if len(word) > 1 and word not in STOPWORDS:
            stemmed = _stems.get(word)
            if stemmed is None:
                stemmed = _stems[word] = stem(word)
            out.append(stemmed)
    return out


def _row_terms(row: dict) -> list[str]:
    """Terms of a candidate passage, cached by chunk id (a chunk id names a fixed span of fixed bytes)."""
    key = row.get("chunk_id")
    if key is None:
        return terms(row["text"])
    cached = _terms_cache.get(key)
    if cached is None:
        if len(_terms_cache) > 50_000:
            _terms_cache.clear()
        cached = _terms_cache[key] = terms(row["text"])
    return cached


def defined_term(question: str) -> str:
    """The term a question asks the definition of ("" if it asks none)."""
    for pattern in _DEFINITION_ASKS:
        match = pattern.search(question)
        if match:
            return match.group(1).strip(" \"“”'")
    return ""


def defines(text: str, term: str) -> bool:
    pattern = r"[\"“]" + re.escape(term) + r"[\"”]\s*(?:\([^)]{0,80}\)\s*)?(?:or [^.;]{0,60}?)?\s*(?:means|shall mean|has the meaning|have the meaning|shall have the meaning|includes|refers to)"
    return re.search(pattern, text, re.IGNORECASE) is not None


def rerank(question: str, candidates: Sequence[tuple[float, dict]], headings: Sequence[str] | None = None) -> list[tuple[float, dict]]:
    """candidates: (fused score, row) best first; returns them re-scored and re-sorted."""
    if not candidates:
        return []
    query_terms = list(dict.fromkeys(terms(question)))
    if not query_terms:
        return list(candidates)
    bigrams = set(zip(query_terms, query_terms[1:]))
    docs = [_row_terms(row) for _, row in candidates]
    sets = [set(d) for d in docs]
    n = len(docs)
    idf = {t: math.log(1 + n / (1 + sum(t in s for s in sets))) for t in query_terms}
    total = sum(idf.values()) or 1.0
    top = max(score for score, _ in candidates) or 1.0
    bottom = min(score for score, _ in candidates)
    span = (top - bottom) or 1.0
    term = defined_term(question)
    rescored = []
    for index, ((score, row), words, word_set) in enumerate(zip(candidates, docs, sets)):
        coverage = sum(idf[t] for t in query_terms if t in word_set) / total
        pairs = set(zip(words, words[1:]))
        bigram = len(bigrams & pairs) / len(bigrams) if bigrams else 0.0
        heading_terms = set(terms(headings[index])) if headings and headings[index] else set()
        heading = sum(idf[t] for t in query_terms if t in heading_terms) / total
        definition = 1.0 if term and defines(row["text"], term) else 0.0
        value = (score - bottom) / span + W_COVERAGE * coverage + W_BIGRAM * bigram + W_HEADING * heading
        rescored.append((value + W_DEFINITION * definition, row))
    return sorted(rescored, key=lambda item: -item[0])
