"""Answers: extractive answers cite existing passages on the right pages; nothing relevant is said; a sentence no
passage supports is flagged. Real ingest, real embedder, real LanceDB."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from models.base import Passage, Reasoning
from models.extractive import EXTRACTIVE_LABEL
from retrieval_fixtures import retrieval_corpus  # noqa: F401  (session fixture: one ingest for all these tests)
from tasks.answer import NOTHING_RELEVANT, answer_question, check_grounding
from tasks.search import search


@pytest.fixture
def corpus(retrieval_corpus):
    return retrieval_corpus


def test_extractive_answer_cites_existing_passages_with_their_pages(corpus):
    answer = answer_question("Which executive orders did Governor Mills issue about gatherings?", 4, settings=corpus)
    assert answer.extractive and answer.relevant and answer.answer.startswith(EXTRACTIVE_LABEL)
    assert answer.sources and not answer.invalid_citations
    assert 5 in {source.page for source in answer.sources}
    for source in answer.sources:
        assert f"[{source.number}]" in answer.answer
        assert source.end > source.start and source.page_end > source.page_start
    assert answer.grounding and answer.unsupported == 0  # sentences copied from the passages are supported


def test_nothing_relevant_is_said_instead_of_guessed(corpus):
    answer = answer_question("What is the recommended baking temperature for sourdough bread with rye flour?", 4,
                             settings=corpus)  # fmt: skip
    assert not answer.relevant and answer.answer == NOTHING_RELEVANT
    assert answer.grounding == [] and "[1]" not in answer.answer


class HallucinatingReasoner:
    """A legitimate test double for the Reasoner Protocol (models/base.py): a model that answers with one true,
    cited sentence and one made-up sentence that it also cites. It stands for any LLM that hallucinates."""

    name = "hallucinating-test-double"

    def answer(self, question: str, passages: Sequence[Passage]) -> Reasoning:
        true = next(p for p in passages if "Executive Order 14" in p.text)
        return Reasoning(
            answer=(
                f"Executive Order 14, issued on March 18, prohibited gatherings of more than ten people [{true.number}]. "
                "The Governor also ordered all casinos to pay a special tax of ninety percent on winnings [1]."
            ),
            model=self.name,
        )

    def stream_answer(self, question: str, passages: Sequence[Passage]) -> Iterator[str]:
        yield self.answer(question, passages).answer


def test_grounding_flags_a_sentence_no_passage_supports(corpus):
    answer = answer_question("What did Executive Order 14 prohibit?", 6, settings=corpus, backend=HallucinatingReasoner())
    assert not answer.extractive and answer.relevant
    assert [check.supported for check in answer.grounding] == [True, False]
    assert answer.unsupported == 1
    assert "casinos" in answer.grounding[1].sentence and answer.grounding[1].passages == [1]


def test_grounding_checks_uncited_sentences_against_all_passages(corpus):
    hits = search("Executive Order 28 stay at home", 4, settings=corpus)
    checks = check_grounding("Executive Order 28 directed all persons residing in Maine to stay at their homes.", hits, corpus)
    assert len(checks) == 1 and checks[0].supported and checks[0].passages == []
