"""OCR repair: unit cases, never inventing citations, and the Tesseract fixtures."""
import pytest
from eyecite import get_citations
from reporters_db import EDITIONS, JOURNALS

from citations import authority_key, find_citations
from citations.clean import clean
from citations.evaluate import ours, plain_eyecite, score

CASES = [
    ("Brown v. Board, 347 U.S.483 (1954)", "347 U.S. 483"),
    ("Brown v. Board, 347 U.S 483 (1954)", "347 U.S. 483"),
    ("Grutter v. Bollinger, 539 U. 8S. 306, 330 (2003)", "539 U.S. 306"),
    ("539 U. 8. 306", "539 U.S. 306"),
    ("United States v. Smith, 123 F. 8d 456 (9th Cir. 1997)", "123 F.3d 456"),
    ("123 F.Zd 456", "123 F.2d 456"),
    ("5 S.Ct. 10", "5 S. Ct. 10"),
    ("4l0 U.S. ll3", "410 U.S. 113"),
    ("4O0 F. Supp. 8d 1O2", "400 F. Supp. 3d 102"),
    ("42 U.S.C. $ 1983", "42 U.S.C. § 1983"),
    ("42 U.S.C. 8 1983", "42 U.S.C. § 1983"),
    ("42 USC 1983", "42 U.S.C. § 1983"),
    ("42 U.S.C. 1983", "42 U.S.C. § 1983"),
    ("Cal. Penal Code $ 187", "Cal. Penal Code § 187"),
    ("Roe v. Wade, 410 U.\nS. 113 (1973)", "410 U.S. 113"),
    ("Roe v. Wade, 410\nU.S. 113 (1973)", "410 U.S. 113"),
]


@pytest.mark.parametrize("text,authority", CASES)
def test_repairs(text, authority):
    assert authority_key(text) == authority
    [c] = [c for c in find_citations(text) if c.authority]
    assert text[c.start:c.end] == c.matched_text  # span in the original (unrepaired) text


def test_plain_eyecite_misses_these():
    for text in ("347 U.S.483", "347 U.S 483", "123 F. 8d 456", "42 U.S.C. $ 1983", "42 USC 1983", "539 U. 8S. 306"):
        assert get_citations(text) == [] or all(type(c).__name__ == "UnknownCitation" for c in get_citations(text))


def test_hyphenation_and_spans_map_back():
    text = "The Court con-\nsidered Roe v.\nWade, 410 U. 8S.\n113, 116\n(1973)."
    [c] = find_citations(text)
    assert c.normalized == "Roe v. Wade, 410 U.S. 113, 116 (1973)"
    assert c.matched_text == text[c.start:c.end] == "Roe v.\nWade, 410 U. 8S.\n113, 116\n(1973)"


@pytest.mark.parametrize("text", [
    "In 2009 Congress passed 12 laws. He paid $ 200 and $200,000 to 4 U. Co. 5.",
    "Section 5 A. The 12 X.Y.Z. 34 and l0 Foo. ll but 7 U. 9. 8 and 12 F. 9d 34.",
    "Tel. 555 1234; 10 O.K. 20; 3 U. S. A. 4",
])
def test_repair_never_invents(text):
    assert find_citations(text) == []


def test_repaired_citations_use_existing_reporters(corpus):
    n = 0
    for clean_pages, ocr_pages, _ in corpus.values():
        for text in ocr_pages:
            mt = clean(text)
            for a, b in mt.repaired:
                n += 1
        for c in find_citations("\n".join(ocr_pages)):
            if c.kind in ("case", "short_case", "journal"):
                assert c.reporter in EDITIONS or c.reporter in JOURNALS
    assert n > 0  # the fixtures do exercise the repairs


def test_ocr_recall_beats_plain_eyecite(corpus):
    """Tesseract fixtures (tests/citations/data/ocr): recall >= 0.90 of the hand-checked clean-text citations,
    and higher than plain eyecite (with and without clean_text) on the same OCR text."""
    total = base = base_ws = no_repair = None
    for clean_pages, ocr_pages, expected in corpus.values():
        s = score(ours(ocr_pages), expected)
        e = score(plain_eyecite(ocr_pages), expected)
        w = score(plain_eyecite(ocr_pages, clean=True), expected)
        r = score(ours(ocr_pages, ocr_repair=False), expected)
        total = s if total is None else total + s
        base = e if base is None else base + e
        base_ws = w if base_ws is None else base_ws + w
        no_repair = r if no_repair is None else no_repair + r
    assert total.recall >= 0.95, total  # measured 0.977
    assert total.precision >= 0.95, total  # measured 0.986
    assert total.recall > base_ws.recall > 0 and total.recall > base.recall
    assert total.recall > no_repair.recall  # the OCR repairs add recall on real Tesseract output
