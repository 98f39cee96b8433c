"""The embedded pipeline end to end: real Prefect flow runs, real poppler, Ghostscript, Tesseract and LanceDB."""

from __future__ import annotations

import re
import shutil

from rapidfuzz.distance import Levenshtein

from paths import CORPUS
from data.make_scanned_sample import make_scan
from docintel.records import PAGE_SEPARATOR
from flows.ingest import ingest_documents
from docintel.settings import get_settings
from tasks.pages import probe_pdf
from tasks.store import CHUNKS, CITATIONS, DOCUMENTS, PAGES, open_store


def text_layer(path) -> list[str]:
    return [page.text for page in probe_pdf(path, get_settings()).pages]


def _store(settings):
    return open_store(settings.db_uri)


def character_error_rate(reference: str, recognized: str) -> float:
    """CER over the words in sorted order. A text layer and OCR order the same page differently (the ECF header
    first or last, two-column captions merged line by line), so this scores recognition, not reading order;
    a misread word still costs its edits (twice over when it sorts elsewhere, so this errs on the strict side)."""
    ref, hyp = (" ".join(sorted(re.findall(r"\S+", text))) for text in (reference, recognized))
    return Levenshtein.distance(ref, hyp) / len(ref)


def test_born_digital_filing_is_read_from_its_text_layer(settings_env, sample):
    settings = settings_env()
    path = sample("ca2_1-1.pdf")
    summary = ingest_documents([str(path)])

    assert summary["documents_new"] == 1 and summary["ocr_pages"] == 0 and not summary["failures"]
    store = _store(settings)
    document = store.documents()[0]
    pages = store.pages(document["document_id"])
    assert [page["method"] for page in pages] == ["text_layer", "text_layer"]
    assert "Acknowledgment and Notice of Appearance" in pages[0]["text"]
    # every passage is an exact slice of its page and of the document text
    text = PAGE_SEPARATOR.join(page["text"] for page in pages)
    chunks = store.rows(CHUNKS)
    assert {chunk["page_number"] for chunk in chunks} == {1, 2}
    for chunk in chunks:
        page_text = pages[chunk["page_number"] - 1]["text"]
        assert page_text[chunk["page_start"] : chunk["page_end"]] == chunk["text"]
        assert text[chunk["doc_start"] : chunk["doc_end"]] == chunk["text"]
        assert len(chunk["vector"]) == 384
    assert store.recorded_embedding() == ("all-MiniLM-L6-v2", 384)


def test_image_only_pdf_is_ocrd_close_to_the_filings_own_text(settings_env, tmp_path):
    settings = settings_env()
    original = CORPUS / "court" / "ca2_1-1.pdf"
    scan = tmp_path / "scan.pdf"
    make_scan(original, scan)
    assert all(not text for text in text_layer(scan)), "the scan must have no text layer"

    summary = ingest_documents([str(scan)])

    assert summary["ocr_pages"] == 2 and not summary["failures"]
    store = _store(settings)
    pages = store.pages(store.documents()[0]["document_id"])
    assert [page["method"] for page in pages] == ["pdf2image+ocr", "pdf2image+ocr"]
    cer = character_error_rate(" ".join(text_layer(original)), " ".join(page["text"] for page in pages))
    assert cer <= 0.05, f"character error rate {cer:.3f}"
    # word boxes are kept, in PDF points inside a US Letter page
    import json

    words = json.loads(pages[0]["words_json"])
    assert len(words) > 100
    assert all(0 <= w["left"] <= 612 and 0 <= w["top"] <= 792 for w in words)


def test_pdf2image_failure_falls_back_to_ghostscript_and_says_so(settings_env, tmp_path):
    # An empty poppler folder makes pdf2image itself fail for real (it cannot find pdfinfo/pdftoppm there).
    empty_poppler = tmp_path / "no-poppler"
    empty_poppler.mkdir()
    settings = settings_env(poppler_path=empty_poppler)
    scan = tmp_path / "scan.pdf"
    make_scan(CORPUS / "court" / "ca6_1-3.pdf", scan)

    summary = ingest_documents([str(scan)])

    assert summary["ocr_pages"] == 3 and not summary["failures"]
    store = _store(settings)
    pages = store.pages(store.documents()[0]["document_id"])
    assert {page["method"] for page in pages} == {"ghostscript+ocr"}
    assert "FOR THE SIXTH CIRCUIT" in " ".join(page["text"] for page in pages)


def _table_versions(settings) -> dict:
    store = _store(settings)
    return {name: store.table(name).version for name in (DOCUMENTS, PAGES, CHUNKS, CITATIONS) if store.table(name)}


def test_reingest_of_the_same_inputs_writes_nothing(settings_env, sample):
    settings = settings_env()
    paths = [str(sample("ca2_1-1.pdf")), str(sample("gov.uscourts.cacd.652774.40.0.pdf"))]
    first = ingest_documents(paths)
    assert first["documents_new"] == 2 and first["rows_written"] > 0
    versions = _table_versions(settings)

    second = ingest_documents(paths)

    assert second["documents_new"] == 0 and second["documents_unchanged"] == 2
    assert second["rows_written"] == 0 and second["chunks_written"] == 0
    assert _table_versions(settings) == versions


def test_changed_file_at_the_same_path_replaces_its_rows(settings_env, sample):
    settings = settings_env()
    path = sample("ca2_1-1.pdf", "filing.pdf")
    ingest_documents([str(path)])
    store = _store(settings)
    old_id = store.documents()[0]["document_id"]

    shutil.copyfile(CORPUS / "court" / "ca6_1-3.pdf", path)  # new bytes, same path
    summary = ingest_documents([str(path)])

    assert summary["documents_new"] == 1
    documents = store.documents()
    assert len(documents) == 1 and documents[0]["document_id"] != old_id
    for table in (CHUNKS, PAGES):
        assert store.count(table, f"document_id = '{old_id}'") == 0
        assert store.count(table) > 0
    assert all(row["document_id"] == documents[0]["document_id"] for row in store.rows(CHUNKS))


def test_missing_input_is_reported_and_the_rest_still_ingests(settings_env, sample, tmp_path):
    settings = settings_env()
    good = sample("ca2_1-1.pdf")
    not_a_pdf = tmp_path / "inbox" / "notes.pdf"
    not_a_pdf.write_text("this is not a PDF at all")

    summary = ingest_documents([str(good), str(not_a_pdf), str(tmp_path / "absent.pdf")])

    assert summary["documents_new"] == 1 and summary["documents_failed"] == 2
    reasons = {failure["path"]: failure["reason"] for failure in summary["failures"]}
    assert str(not_a_pdf) in reasons and str(tmp_path / "absent.pdf") in reasons
    assert "Traceback" not in " ".join(reasons.values())
    assert {row["source_path"] for row in _store(settings).failures()} == set(reasons)


def test_two_copies_of_one_file_in_one_run_both_finish(settings_env, sample, tmp_path):
    """Byte-identical files at two paths share a document id; the embedding stage tracks them apart (keyed by
    document id it would wait for ever on the second copy's passages)."""
    settings = settings_env()
    first = sample("ca2_1-1.pdf")
    second = tmp_path / "copy" / "same-bytes.pdf"
    second.parent.mkdir()
    shutil.copyfile(first, second)
    summary = ingest_documents([str(first), str(second)])
    assert summary["documents_new"] == 2 and summary["failures"] == [], summary
    (document,) = _store(settings).documents()
    assert document["status"] == "complete" and document["chunk_count"] > 0
    assert _store(settings).count(CHUNKS) == document["chunk_count"]
