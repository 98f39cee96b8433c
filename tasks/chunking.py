"""Stage 4: page-aware passages cut at sentence boundaries, each with its offsets in the page and the document."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from docintel.records import PAGE_SEPARATOR, Chunk, PageText

# A boundary is the position right after a sentence end or a line break; legal abbreviations ("v.", "U.S.",
# "No.", "Inc.") would otherwise split a citation in two.
_SENTENCE_END = re.compile(r"[.!?;:][\"'”’)\]]*(?=\s)|\n")
_ABBREVIATION = re.compile(
    r"(?:\b(?:v|vs|No|Nos|Inc|Corp|Co|Ltd|Cir|Dist|Ct|App|Supp|Mr|Mrs|Ms|Dr|Jr|Sr|St|Stat|Rev|Cal|Fed|Reg|Art|"
    r"Sec|art|sec|Id|id|al|e\.g|i\.e|cf|Cf|See|U\.S|F|S|L|Ed|[A-Z])\.)$"
)


def sentence_boundaries(text: str) -> list[int]:
    """Offsets just past each sentence end or line break, skipping abbreviations common in legal text."""
    boundaries = []
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if text[match.start()] == "." and _ABBREVIATION.search(text[max(0, match.start() - 8) : match.start() + 1]):
            continue
        boundaries.append(end)
    return boundaries


def _chunk_id(document_id: str, page_number: int, start: int, end: int) -> str:
    return hashlib.sha256(f"{document_id}:{page_number}:{start}:{end}".encode()).hexdigest()[:32]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_page(text: str, target_chars: int, overlap_chars: int) -> list[tuple[int, int]]:
    """(start, end) spans covering the text: each ends at the last sentence boundary before start + target (or the
    last space, for a run-on sentence) and the next starts at a boundary inside the final ``overlap_chars``."""
    spans: list[tuple[int, int]] = []
    boundaries = sentence_boundaries(text)
    start = 0
    length = len(text)
    while start < length:
        limit = start + target_chars
        if limit >= length:
            end = length
        else:
            candidates = [b for b in boundaries if start + target_chars // 3 < b <= limit]
            if candidates:
                end = candidates[-1]
            else:
                space = text.rfind(" ", start + target_chars // 3, limit)
                end = space if space > start else limit
        trimmed = _trim(text, start, end)
        if trimmed[1] > trimmed[0]:
            spans.append(trimmed)
        if end >= length:
            break
        restart = [b for b in boundaries if end - overlap_chars <= b < end and b > start]
        if restart and overlap_chars:
            start = restart[0]
        elif overlap_chars:
            space = text.find(" ", max(end - overlap_chars, start + 1), end)
            start = space + 1 if space != -1 else end
        else:
            start = end
    return spans


def chunk_pages(
    pages: Sequence[PageText], source_path: str, target_chars: int, overlap_chars: int, page_offsets: Sequence[int]
) -> list[Chunk]:
    """Passages for every page; ``page_offsets[i]`` is where page i starts in the document text."""
    chunks = []
    for page, page_offset in zip(pages, page_offsets):
        for start, end in split_page(page.text, target_chars, overlap_chars):
            chunks.append(
                Chunk(
                    chunk_id=_chunk_id(page.document_id, page.page_number, start, end),
                    document_id=page.document_id,
                    source_path=source_path,
                    page_number=page.page_number,
                    page_start=start,
                    page_end=end,
                    doc_start=page_offset + start,
                    doc_end=page_offset + end,
                    text=page.text[start:end],
                )
            )
    return chunks


def page_offsets(pages: Sequence[PageText]) -> list[int]:
    """Where each page starts in the document text, which is the pages joined by PAGE_SEPARATOR."""
    offsets, position = [], 0
    for page in pages:
        offsets.append(position)
        position += len(page.text) + len(PAGE_SEPARATOR)
    return offsets


def document_text(pages: Sequence[PageText]) -> str:
    return PAGE_SEPARATOR.join(page.text for page in pages)
