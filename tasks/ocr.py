"""Stage 3: OCR one rendered page. Results are cached by content (document hash, page, DPI, backend), so a re-run
after a crash never OCRs a finished page again. No task-level retries: rendering and Tesseract failures are
deterministic, and the vLLM client already retries transient server faults with backoff; what still fails is
recorded per page and retried with `docintel ingest --retry-failed`."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import task
from prefect.context import TaskRunContext

from docintel.records import PageText, SourceFile
from docintel.settings import get_settings
from models.backends import ocr_backend
from tasks.limits import model_server_slot
from tasks.pages import render_page
from tasks.passwords import password_for


def ocr_cache_key(context: TaskRunContext, parameters: dict) -> str:
    settings = get_settings()
    source: SourceFile = parameters["source"]
    renderer = settings.poppler_path or "poppler"
    return f"ocr-{settings.ocr_backend}-{source.document_id}-p{parameters['page_number']}-{settings.dpi}dpi-{renderer}"


@task(
    name="ocr-page",
    cache_key_fn=ocr_cache_key,
    persist_result=True,
    log_prints=False,
)
def ocr_page(source: SourceFile, page_number: int) -> PageText:
    """Render (pdf2image, else Ghostscript) and read one page. Raises on failure: the flow records it as data."""
    settings = get_settings()
    password = password_for(source.path, source.document_id, settings)
    image, method = render_page(Path(source.path), page_number, settings, password)
    started = time.perf_counter()
    with model_server_slot("ocr", settings):
        result = ocr_backend(settings).recognize(image, settings.dpi)
    return PageText(
        document_id=source.document_id,
        page_number=page_number,
        text=result.text,
        method=method,
        ocr_seconds=round(time.perf_counter() - started, 3),
        words=result.words,
    )
