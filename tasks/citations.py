"""Stage 5: legal citations of a document, resolved across its pages, attached to the passages that contain them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict

from pathlib import Path

from citations import Citation, authority_key, find_document_citations
from docintel.records import Chunk, PageText
from docintel.settings import Settings
from tasks.store import STATUS_COMPLETE, Store, _quote


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


def citations_from_rows(rows: Sequence[dict]) -> list[Citation]:
    fields = Citation.__dataclass_fields__
    return [Citation(**{name: row[name] for name in fields}) for row in rows]


def file_page_texts(path: Path, settings: Settings) -> list[str]:
    """Page texts of a file that was not ingested: text layer where good, OCR (no Prefect run) elsewhere."""
    if path.suffix.lower() == ".txt":
        return path.read_text(encoding="utf-8", errors="replace").split("\f")
    from models.backends import ocr_backend
    from tasks.pages import probe_pdf, render_page, text_layer_is_good

    texts = []
    for number, page in enumerate(probe_pdf(path, settings).pages, 1):
        if text_layer_is_good(page.text, settings):
            texts.append(page.text)
        else:
            image, _ = render_page(path, number, settings)
            texts.append(ocr_backend(settings).recognize(image, settings.dpi).text)
    return texts


def documents_citing(store: Store, citation_text: str) -> tuple[str, list[dict]]:
    """Every ingested document and page citing an authority in any form (full, short, Id., supra)."""
    key = authority_key(citation_text) or citation_text.strip()
    rows = store.citations(f"authority = '{_quote(key)}'")
    complete = {row["document_id"] for row in store.documents() if row["status"] == STATUS_COMPLETE}
    grouped: dict[tuple[str, int], dict] = {}
    for row in rows:
        if row["document_id"] not in complete:
            continue
        entry = grouped.setdefault(
            (row["document_id"], row["page_number"]),
            {"document_id": row["document_id"], "source": row["source_path"], "page": row["page_number"], "forms": []},
        )
        entry["forms"].append({"kind": row["kind"], "text": row["matched_text"], "normalized": row["normalized"]})
    return key, sorted(grouped.values(), key=lambda entry: (entry["source"], entry["page"]))
