"""Structure-aware chunking: sections, clauses, definitions and footnotes; exact offsets, always."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docintel.records import PageMethod, PageText
from tasks.chunking import chunk_pages, document_text, page_offsets, split_page, structure_blocks

CONTRACT = """AGREEMENT AND PLAN OF MERGER

ARTICLE I
DEFINITIONS

Section 1.1 Definitions. For purposes of this Agreement:

“Intervening Event” means any material event, development or change in circumstances with respect to the Company
that was not known to the Board of Directors as of the date of this Agreement.

“Knowledge” means the actual knowledge, after reasonable inquiry, of the officers of the Company listed in
Section 1.1 of the Company Disclosure Letter.

“Law” means any federal, state or local law, statute, ordinance, rule or regulation.

ARTICLE VI
COVENANTS

6.3 No Solicitation.

(a) The Company shall not, and shall cause its Subsidiaries not to, solicit, initiate or knowingly encourage any
inquiry or the making of any Acquisition Proposal, as set forth in
Section 6.3 of the Company Disclosure Letter.

(b) Notwithstanding Section 6.3(a), the Board may respond to an unsolicited bona fide written Acquisition Proposal.

10.6 Specific Performance.
The parties agree that irreparable damage would occur if any provision of this Agreement were not performed.
"""


def _page(text: str, number: int = 1) -> PageText:
    return PageText("doc", number, text, PageMethod.PLAIN_TEXT)


def _chunks(pages: list[PageText], target: int = 300, overlap: int = 60):
    return chunk_pages(pages, "contract.txt", target, overlap, page_offsets(pages), structure=True)


def test_sections_and_articles_start_new_passages_with_their_heading_context():
    chunks = _chunks([_page(CONTRACT)])
    texts = [chunk.text for chunk in chunks]
    # an article heading opens a passage; a heading stays with its first paragraph
    assert any(t.startswith("ARTICLE VI") for t in texts)
    assert any(t.startswith("10.6 Specific Performance.") and "irreparable damage" in t for t in texts)
    knowledge = next(c for c in chunks if "“Knowledge” means" in c.text)
    assert "Definitions" in knowledge.heading and knowledge.heading.startswith("ARTICLE I")
    clause_b = next(c for c in chunks if "Notwithstanding Section 6.3(a)" in c.text)
    assert "6.3 No Solicitation" in clause_b.heading and "ARTICLE VI COVENANTS" in clause_b.heading
    # a line that only wraps a cross-reference ("...as set forth in\nSection 6.3 of ...") opens no section
    assert not any(b.heading.startswith("Section 6.3 of the Company") for b in structure_blocks(CONTRACT))


def test_defined_terms_and_clauses_are_blocks():
    blocks = structure_blocks(CONTRACT)
    starts = [CONTRACT[b.start : b.start + 20] for b in blocks]
    assert any(s.startswith("“Knowledge” means") for s in starts)
    assert any(s.startswith("(a) The Company") for s in starts)
    assert any(s.startswith("(b) Notwithstanding") for s in starts)


def test_footnotes_are_cut_off_the_body_text():
    body = "The court reviews the denial of a preliminary injunction for abuse of discretion. " * 8
    page = body + "\n\n1 The plaintiffs also sought a temporary restraining order, which was denied.\n"
    spans = split_page(page, 400, 50)
    footnote = [page[s:e] for s, e in spans if "temporary restraining order" in page[s:e]]
    assert footnote == ["1 The plaintiffs also sought a temporary restraining order, which was denied."]


def test_offsets_are_exact_in_page_and_document_text_across_pages():
    pages = [_page(CONTRACT[:700], 1), _page(CONTRACT[700:], 2), _page("", 3), _page("Short last page.", 4)]
    text = document_text(pages)
    chunks = _chunks(pages)
    for chunk in chunks:
        page_text = pages[chunk.page_number - 1].text
        assert page_text[chunk.page_start : chunk.page_end] == chunk.text
        assert text[chunk.doc_start : chunk.doc_end] == chunk.text
    # the section continues on page 2 under the headings opened on page 1
    second = [c for c in chunks if c.page_number == 2]
    assert second and all(c.heading for c in second)


def test_long_clause_becomes_overlapping_sentence_windows():
    sentence = "The Company shall maintain its books and records in accordance with applicable law. "
    text = "5.1 Books and Records.\n\n" + sentence * 30
    spans = split_page(text, 500, 100)
    assert len(spans) > 4
    assert all(e - s <= 500 for s, e in spans)
    assert text[spans[0][0] :].startswith("5.1 Books and Records.")  # the heading leads its clause
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # windows overlap


_LEGAL_ALPHABET = st.sampled_from(
    list("abcdefgh ABCDEFG.;:,()“”\"§0123456789\n\n\t ") + ["ARTICLE IV\n", "Section 2.1 ", "(a) ", "1. ", "\r\n", "\f",
                                                          "“Term” means ", "10.6 Remedies.\n", "\n\n1 See id.\n"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.lists(_LEGAL_ALPHABET, max_size=400).map("".join) | st.text(max_size=1500),
    target=st.integers(min_value=100, max_value=1200),
    overlap=st.integers(min_value=0, max_value=300),
    structure=st.booleans(),
)
def test_any_text_splits_into_exact_spans_that_cover_it(text, target, overlap, structure):
    spans = split_page(text, target, overlap, structure)
    covered = [False] * len(text)
    for start, end in spans:
        assert 0 <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip() and piece  # trimmed, never empty
        for i in range(start, end):
            covered[i] = True
    # every non-blank character is in some passage
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    pages = [_page(text, 1), _page(text[::-1], 2)]
    document = document_text(pages)
    for chunk in chunk_pages(pages, "x.txt", target, overlap, page_offsets(pages), structure=structure):
        assert document[chunk.doc_start : chunk.doc_end] == chunk.text == pages[chunk.page_number - 1].text[chunk.page_start : chunk.page_end]
