"""Hand-checked expected citations of three real documents (tests/citations/expected/*.json)."""
import pytest

from citations.evaluate import ours, plain_eyecite, score


def test_precision_recall_clean_text(corpus):
    total = None
    for name, (clean_pages, _, expected) in corpus.items():
        s = score(ours(clean_pages), expected)
        assert s.precision >= 0.97 and s.recall >= 0.97, (name, s)
        total = s if total is None else total + s
    assert total.precision >= 0.97 and total.recall >= 0.97
    assert total.normalized_rate >= 0.97, total  # Bluebook form exact for the matched citations


@pytest.mark.parametrize("name", ["scotus-slip-opinion", "ca1_00117684624", "ca5_00516242060"])
def test_better_than_plain_eyecite(corpus, name):
    clean_pages, _, expected = corpus[name]
    s = score(ours(clean_pages), expected)
    e = score(plain_eyecite(clean_pages, clean=True), expected)
    assert s.recall > e.recall and s.precision > e.precision


def test_expected_files_are_consistent(corpus):
    kinds = {"case", "short_case", "id", "supra", "statute", "regulation", "session_law", "journal", "other"}
    for name, (clean_pages, _, expected) in corpus.items():
        assert expected, name
        for e in expected:
            assert e["kind"] in kinds and 1 <= e["page"] <= len(clean_pages)
