"""Stage 5: legal citations of a document, resolved across its pages, attached to the passages that contain them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict

from citations import Citation, find_document_citations
from docintel.records import Chunk, PageText


def document_citations(pages: Sequence[PageText]) -> list[Citation]:
    return find_document_citations([page.text for page in pages])


def attach_citations(chunks: Sequence[Chunk], found: Sequence[Citation]) -> None:
    """Each chunk lists the authorities cited inside its span (by authority key, or the normalised form)."""
    by_page: dict[int, list[Citation]] = {}
    for citation in found:
        by_page.setdefault(citation.page_number, []).append(citation)
    for chunk in chunks:
        inside = [
            c for c in by_page.get(chunk.page_number, []) if c.start < chunk.page_end and c.end > chunk.page_start
        ]
        chunk.citations = list(dict.fromkeys(c.authority or c.normalized for c in inside))


def citation_rows(found: Sequence[Citation], document_id: str, source_path: str) -> list[dict]:
    rows = []
    for citation in found:
        row = asdict(citation)
        row.update(
            citation_id=hashlib.sha256(
                f"{document_id}:{citation.page_number}:{citation.start}:{citation.end}".encode()
            ).hexdigest()[:32],
            document_id=document_id,
            source_path=source_path,
        )
        rows.append(row)
    return rows
