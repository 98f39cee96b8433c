"""Embedded answer default: no language model, so the answer is the passages' own best sentences, labelled as such."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from models.base import Passage, Reasoning

EXTRACTIVE_LABEL = "Extractive answer (no language model configured): the most relevant sentences of the top passages."

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-Z(\"“])|\n{2,}")
_WORD = re.compile(r"[a-z0-9§]+")
_STOPWORDS = frozenset(
    "a an and are as at be by can could did do does for from had has have how i in is it its may must of on or "
    "shall should that the their there these this to under was were what when where which who whom why will with "
    "would you your not no".split()
)


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) > 20]


# A real token: a word (with inner apostrophes or hyphens), a number, an initialism ("U.S."), a section sign,
# wrapped in ordinary punctuation.
_REAL_TOKEN = re.compile(
    r"[(\[\"“'‘]*(?:[A-Za-z]+(?:['’-][A-Za-z]+)*|\d+(?:[.,/-]\d+)*(?:st|nd|rd|th|d)?|(?:[A-Za-z]\.)+[A-Za-z]?|§+|&)"
    r"[)\]\"”'’.,;:!?]*"
)
_VOWEL = re.compile(r"[aeiouyAEIOUY]")


def word_ratio(sentence: str) -> float:
    """Share of a sentence's tokens that are real words, numbers or legal abbreviations; OCR garbage
    ("l1ll ~~ ,,;\\ rn0O") scores low."""
    tokens = sentence.split()
    if not tokens:
        return 0.0
    real = 0
    for token in tokens:
        if _REAL_TOKEN.fullmatch(token):
            letters = re.sub(r"[^A-Za-z]", "", token)
            real += not letters or len(letters) <= 3 or bool(_VOWEL.search(letters))
    return real / len(tokens)


MIN_WORD_RATIO = 0.7


class ExtractiveReasoner:
    name = "extractive"

    def __init__(self, max_sentences: int = 4):
        self.max_sentences = max_sentences

    def select_sentences(self, question: str, passages: Sequence[Passage]) -> list[tuple[int, str]]:
        """Score each sentence by the share of the question's content words it contains, with a small bonus for
        higher-ranked passages; return the best sentences in passage order as (passage number, sentence)."""
        from tasks.rerank import defined_term, defines

        query_words = content_words(question)
        term = defined_term(question)  # "definition of X": the sentence that defines “X” answers it
        scored: list[tuple[float, int, int, str]] = []
        for rank, passage in enumerate(passages):
            for position, sentence in enumerate(split_sentences(passage.text)):
                if word_ratio(sentence) < MIN_WORD_RATIO:
                    continue  # OCR garbage is no answer, however many query words it happens to hold
                overlap = len(query_words & content_words(sentence)) / max(len(query_words), 1)
                if term and defines(sentence, term):
                    overlap += 1.0
                if overlap == 0:
                    continue
                scored.append((overlap + 0.05 / (rank + 1), passage.number, position, sentence))
        best = sorted(scored, key=lambda item: item[0], reverse=True)[: self.max_sentences]
        return [(number, sentence) for _, number, _, sentence in sorted(best, key=lambda item: (item[1], item[2]))]

    def answer(self, question: str, passages: Sequence[Passage]) -> Reasoning:
        chosen = self.select_sentences(question, passages)
        if not chosen:
            return Reasoning(answer="", model=self.name)
        body = " ".join(f"{sentence} [{number}]" for number, sentence in chosen)
        return Reasoning(answer=f"{EXTRACTIVE_LABEL}\n\n{body}", model=self.name)

    def stream_answer(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        yield self.answer(question, passages).answer
