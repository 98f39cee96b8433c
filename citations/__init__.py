"""Hydra DocIntel citation engine: legal citations in (possibly OCR'd) page text, on top of eyecite.

    find_document_citations(pages) -> list[Citation]   # pages 1..n, short forms / Id. / supra resolved
    find_citations(text) -> list[Citation]            # one text, page_number=1
    authority_key("410 U. S. 113") -> "410 U.S. 113"
    table_of_authorities(citations) -> {"Cases": [...], "Statutes": [...], "Other Authorities": [...]}
    render_table_of_authorities_markdown(toa, title) -> str

Modules: ``models`` (data), ``clean`` (whitespace/hyphenation with offset map), ``ocr`` (OCR repairs, checked
against ``reporters``), ``find`` (eyecite + own metadata), ``statutes``, ``normalize`` (Bluebook forms),
``resolve`` (short forms across pages), ``authorities`` (table of authorities).
"""
from __future__ import annotations

from bisect import bisect_right

from .authorities import render_table_of_authorities_markdown, table_of_authorities
from .find import find_raw
from .models import KINDS, Citation
from .pages import mask_running_headers
from .resolve import resolve

__all__ = [
    "KINDS",
    "Citation",
    "authority_key",
    "find_citations",
    "find_document_citations",
    "render_table_of_authorities_markdown",
    "table_of_authorities",
]


def find_document_citations(pages: list[str], ocr_repair: bool = True) -> list[Citation]:
    """All citations of a document, pages 1..n, short forms / Id. / supra resolved across pages.

    Pages are searched as one text (running headers blanked), so a citation may cross a page break; it belongs to
    the page holding its volume and reporter, and its span is clipped to that page.
    """
    pages = [p or "" for p in pages]
    masked = mask_running_headers(pages)
    starts = []
    pos = 0
    for p in masked:
        starts.append(pos)
        pos += len(p) + 1
    joined = "\n".join(masked)
    raws = []
    for rc in find_raw(joined, 1, ocr_repair=ocr_repair):
        k = bisect_right(starts, rc.anchor) - 1
        lo, hi = starts[k], starts[k] + len(pages[k])
        a, b = max(rc.start, lo) - lo, min(rc.end, hi) - lo
        text = masked[k]  # trim blanked running headers too
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a >= b:
            continue
        rc.start, rc.end, rc.page_number = a, b, k + 1
        raws.append(rc)
    return resolve(raws, pages)


def find_citations(text: str, ocr_repair: bool = True) -> list[Citation]:
    """Citations of one text (page_number=1)."""
    return find_document_citations([text], ocr_repair=ocr_repair)


_FULL = ("case", "statute", "regulation", "session_law", "journal", "other")


def authority_key(text: str) -> str:
    """Normalise a user-typed citation ("410 U. S. 113", "42 USC 1983") to the key used in
    ``Citation.authority``; "" if the text holds no full citation."""
    for c in find_citations(text or ""):
        if c.kind in _FULL and c.authority:
            return c.authority
    return ""
