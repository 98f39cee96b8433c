"""The ingest pipeline: identify -> pages -> OCR -> chunking -> citations -> embeddings -> store.

OCR pages run in the flow's task-runner threads (one tesseract process each, up to the core count); the flow thread
chunks and cites every document whose pages are all in and hands its passages to the embedding stage, which batches
them across documents on a task runner of its own (tasks/embed.py); embedded documents are stored by the flow thread.
A failed page or document is carried as data to the failures table; it never stops the batch.
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from citations import render_table_of_authorities_markdown, table_of_authorities
from docintel import progress
from docintel.records import Failure, PageMethod, PageText, SourceFile, error_reason
from docintel.settings import get_settings
from models.backends import embedder
from tasks.chunking import chunk_pages, page_offsets
from tasks.citations import attach_citations, citation_rows, document_citations
from tasks.embed import EmbeddingOutcome, EmbeddingStage
from tasks.identify import expand_inputs, identify
from tasks.ocr import ocr_page
from tasks.pages import DocumentError, check_file, check_render_size, probe_pdf, text_layer_is_good
from tasks.passwords import password_for
from tasks.store import STATUS_COMPLETE, StorageError, open_store, storage_error_reason


@dataclass
class DocumentPlan:
    source: SourceFile
    status: str  # "new" | "unchanged" | "failed"
    page_count: int = 0
    pages: dict[int, PageText] = field(default_factory=dict)
    ocr_pages: list[int] = field(default_factory=list)
    failure: Failure | None = None
    note: str = ""  # damage the parser repaired


def read_text_file(source: SourceFile) -> list[PageText]:
    """A .txt file is one page, or one page per form feed; universal newlines, as any reader of the file sees it."""
    text = Path(source.path).read_text(encoding="utf-8", errors="replace")
    parts = text.split("\f") if "\f" in text else [text]
    return [PageText(source.document_id, number, part, PageMethod.PLAIN_TEXT) for number, part in enumerate(parts, 1)]


def recorded_outcome(source: SourceFile, retry_failed: bool) -> str | None:
    """What an earlier run made of these exact bytes: "complete", a failure reason, or None (never seen, or a
    failure to retry now)."""
    store = open_store(get_settings().db_uri)
    document = store.document(source.document_id)
    if document is not None and document["status"] == STATUS_COMPLETE:
        if not (retry_failed and document["failed_pages"]):
            return STATUS_COMPLETE
    if retry_failed:
        return None
    for failure in store.failures_of(source.document_id):
        if failure["page_number"] == 0:
            return failure["reason"]
    return None


@task(name="plan-document", cache_policy=NO_CACHE)
def plan_document(path: str, retry_failed: bool = False) -> DocumentPlan:
    """Identify a file and decide, page by page, between its text layer and OCR."""
    settings = get_settings()
    source = identify(Path(path))
    outcome = recorded_outcome(source, retry_failed)
    if outcome == STATUS_COMPLETE:
        return DocumentPlan(source=source, status="unchanged")
    if outcome is not None:
        return DocumentPlan(source, "failed", failure=Failure(path, outcome, "recorded", source.document_id))
    try:
        if source.kind == "txt":
            check_file(Path(path), settings, "txt")
            pages = read_text_file(source)
            return DocumentPlan(source, "new", len(pages), {page.page_number: page for page in pages})
        probe = probe_pdf(Path(path), settings, password_for(path, source.document_id, settings))
        plan = DocumentPlan(source, "new", len(probe.pages), note=probe.damage)
        for number, page in enumerate(probe.pages, 1):
            if text_layer_is_good(page.text, settings):
                plan.pages[number] = PageText(source.document_id, number, page.text, PageMethod.TEXT_LAYER)
            else:
                check_render_size(page, number, settings)
                plan.ocr_pages.append(number)
    except DocumentError as error:
        return DocumentPlan(source, "failed", failure=Failure(path, str(error), "pages", source.document_id))
    return plan


@task(name="store-document", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])
def store_document(plan: DocumentPlan, pages: list[PageText], chunks: list, citations: list[dict]) -> int:
    settings = get_settings()
    store = open_store(settings.db_uri)
    document_row = {
        "document_id": plan.source.document_id,
        "source_path": plan.source.path,
        "file_name": Path(plan.source.path).name,
        "kind": plan.source.kind,
        "size_bytes": plan.source.size_bytes,
        "page_count": len(pages),
        "chunk_count": len(chunks),
        "citation_count": len(citations),
        "failed_pages": sum(page.failed for page in pages),
        "node": settings.node_name,
        "note": plan.note,
    }
    try:
        written = store.write_document(document_row, pages, chunks, citations, embedder().model_name)
        for old_id in store.superseded_documents(plan.source.path, plan.source.document_id):
            store.delete_document(old_id)
    except Exception as error:
        raise StorageError(storage_error_reason(error)) from error
    return written


class StageClock:
    """Wall seconds spent in each stage of the flow thread, for the run summary and the benchmark."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@dataclass
class PreparedDocument:
    """A document whose pages are all in, chunked and cited, waiting for its vectors."""

    plan: DocumentPlan
    pages: list[PageText]
    chunks: list
    found: list


def prepare_document(plan: DocumentPlan, clock: StageClock) -> PreparedDocument:
    """Chunk and cite a document whose pages are all in."""
    settings = get_settings()
    pages = [plan.pages[number] for number in sorted(plan.pages)]
    with clock.stage("chunking"):
        chunks = chunk_pages(
            pages, plan.source.path, settings.chunk_target_chars, settings.chunk_overlap_chars, page_offsets(pages)
        )
    with clock.stage("citations"):
        found = document_citations(pages)
        attach_citations(chunks, found)
    if chunks:
        model = embedder()
        open_store(settings.db_uri).check_embedding(model.model_name, model.dimension)
    return PreparedDocument(plan, pages, chunks, found)


def save_document(prepared: PreparedDocument, clock: StageClock) -> dict:
    """Store an embedded document (it turns searchable) and publish its table of authorities; its summary row."""
    settings = get_settings()
    plan, pages, chunks = prepared.plan, prepared.pages, prepared.chunks
    rows = citation_rows(prepared.found, plan.source.document_id, plan.source.path)
    with clock.stage("store"):
        # quote(): Prefect would otherwise walk every page, word box and vector looking for futures (~0.7 s a document)
        written = store_document(quote(plan), quote(pages), quote(chunks), quote(rows))
    if prepared.found:
        publish_table_of_authorities(plan.source, prepared.found)
    if chunks:
        model = embedder()
        open_store(settings.db_uri).record_embedding(model.model_name, model.dimension)
    return {
        "path": plan.source.path,
        "document_id": plan.source.document_id,
        "status": "ingested",
        "pages": len(pages),
        "ocr_pages": sum(page.method in (PageMethod.PDF2IMAGE_OCR, PageMethod.GHOSTSCRIPT_OCR) for page in pages),
        "failed_pages": sum(page.failed for page in pages),
        "chunks": len(chunks),
        "citations": len(rows),
        "rows_written": written,
        "node": settings.node_name,
        "note": plan.note,
    }


def publish_table_of_authorities(source: SourceFile, found: list) -> None:
    markdown = render_table_of_authorities_markdown(table_of_authorities(found), Path(source.path).name)
    create_markdown_artifact(
        key=f"authorities-{source.document_id[:16]}", markdown=markdown, description=f"Table of Authorities: {source.path}"
    )


def _warm_up_embedder() -> None:
    try:
        embedder().embed_documents(["warm-up"])
    except Exception:  # a model server that is down is reported by the real batches
        pass


def failed_page(source: SourceFile, page_number: int, error: BaseException) -> PageText:
    return PageText(source.document_id, page_number, "", PageMethod.FAILED, error=error_reason(error))


class DocumentPipeline:
    """OCR pages (the flow's task runner) -> chunk + cite (flow thread) -> embedding batches across documents (a task
    runner of their own) -> store (flow thread). Finished OCR pages and embedding batches come back as events on one
    queue, so the flow thread never waits on one stage while another has work for it."""

    def __init__(self, settings, clock: StageClock, listener, failures: list[Failure]):
        self.settings = settings
        self.clock = clock
        self.listener = listener
        self.failures = failures  # shared with the flow: the run's failures, recorded at its end
        self.logger = get_run_logger()
        self.store = open_store(settings.db_uri)
        self.events: queue.Queue = queue.Queue()
        self.documents: list[dict] = []
        self.prepared: dict[int, PreparedDocument] = {}  # waiting for vectors, by id() of their plan
        self.embedding: EmbeddingStage | None = None

    def run(self, plans: list[DocumentPlan]) -> list[dict]:
        """Index every new document; returns their summary rows (ingested or failed)."""
        backend_in_flight = self.settings.embed_in_flight if self.settings.embed_backend == "vllm" else 1
        with ThreadPoolTaskRunner(max_workers=backend_in_flight) as embed_runner:
            self.embedding = EmbeddingStage(embed_runner, self.events, self.settings.embed_batch_size, backend_in_flight)
            pages_to_come = {id(plan): len(plan.ocr_pages) for plan in plans}
            for plan in plans:
                for number in plan.ocr_pages:
                    future = ocr_page.submit(plan.source, number)
                    future.add_done_callback(lambda done, p=plan, n=number: self.events.put(("page", p, n, done)))
                for number in plan.pages:
                    self.listener.page_done(plan.source.path, number)
            for plan in plans:
                if not plan.ocr_pages:
                    self.pages_in(plan)
            while len(self.documents) < len(plans):
                event = self.events.get()
                if event[0] == "page":
                    _, plan, number, future = event
                    try:
                        plan.pages[number] = future.result()
                    except Exception as error:
                        plan.pages[number] = failed_page(plan.source, number, error)
                    self.listener.page_done(plan.source.path, number)
                    pages_to_come[id(plan)] -= 1
                    if pages_to_come[id(plan)] == 0:
                        self.pages_in(plan)
                else:
                    self.embedded(event[1])
        self.clock.seconds["embeddings"] = self.embedding.busy_seconds
        return self.documents

    def pages_in(self, plan: DocumentPlan) -> None:
        """Every page of the document is in: chunk and cite it, then queue its passages for embedding."""
        try:
            prepared = prepare_document(plan, self.clock)
        except Exception as error:
            self.failed(plan, error_reason(error))
            return
        if not prepared.chunks:
            self.save(prepared)
            return
        self.prepared[id(plan)] = prepared  # by plan, not document id: two copies of one file are two plans
        self.embedding.add(id(plan), prepared.chunks)

    def embedded(self, outcome: EmbeddingOutcome) -> None:
        for key, reason in outcome.failed.items():
            self.failed(self.prepared.pop(key).plan, reason)
        for key in outcome.embedded:
            self.save(self.prepared.pop(key))

    def save(self, prepared: PreparedDocument) -> None:
        try:
            summary = save_document(prepared, self.clock)
            self.store.clear_failures(document_id=prepared.plan.source.document_id)
        except Exception as error:  # one document's failure never sinks the batch
            self.failed(prepared.plan, error_reason(error))
            return
        self.finished(prepared.plan, summary)

    def failed(self, plan: DocumentPlan, reason: str) -> None:
        self.logger.error("could not index %s: %s", plan.source.path, reason)
        self.failures.append(Failure(plan.source.path, reason, "index", plan.source.document_id, retry_pending=True))
        self.finished(plan, {"path": plan.source.path, "document_id": plan.source.document_id, "status": "failed"})

    def finished(self, plan: DocumentPlan, summary: dict) -> None:
        self.failures.extend(Failure(plan.source.path, p.error or "", "ocr", p.document_id, p.page_number, True)
                             for p in plan.pages.values() if p.failed)  # fmt: skip
        self.documents.append(summary)
        self.listener.document_done(plan.source.path, summary["status"])


@flow(
    name="ingest-documents",
    task_runner=ThreadPoolTaskRunner(max_workers=get_settings().ocr_workers),
    log_prints=True,
)
def ingest_documents(paths: list[str], retry_failed: bool = False) -> dict:
    """Ingest PDF and .txt files, folders and globs into the LanceDB database named by settings.

    Args:
        paths: Files, folders or globs; every node must see them at the same path.
        retry_failed: Retry files and pages whose earlier ingestion failed.
    """
    started = time.perf_counter()
    settings = get_settings()
    logger = get_run_logger()
    store = open_store(settings.db_uri)
    files, failures = expand_inputs(paths)
    listener = progress.listener()

    clock = StageClock()
    # Loading the embedding model takes seconds: do it while the first pages are read and OCR'd.
    threading.Thread(target=_warm_up_embedder, daemon=True).start()
    with clock.stage("pages"):
        plans = [future.result() for future in plan_document.map([str(f) for f in files], retry_failed)]
    new_plans = [plan for plan in plans if plan.status == "new"]
    listener.add_work(len(new_plans), sum(plan.page_count for plan in new_plans))
    pipeline = DocumentPipeline(settings, clock, listener, failures)
    documents = pipeline.run(new_plans)

    for plan in plans:
        if plan.status == "failed" and plan.failure:
            failures.append(plan.failure)
            documents.append({"path": plan.source.path, "document_id": plan.source.document_id, "status": "failed"})
        elif plan.status == "unchanged":
            documents.append({"path": plan.source.path, "document_id": plan.source.document_id, "status": "unchanged"})
    unrecorded = ""
    try:
        store.record_failures([f for f in failures if f.stage != "recorded"], settings.node_name)
        if any(doc["status"] == "ingested" for doc in documents):
            with clock.stage("index"):
                store.refresh_indexes()
    except Exception as error:  # the database itself is failing (disk full, storage gone): say so, keep the summary
        unrecorded = f"{type(error).__name__}: {str(error)[:300]}"
        logger.error("could not write to the database %s: %s", settings.db_uri, unrecorded)
    summary = summarize(documents, failures, time.perf_counter() - started)
    if unrecorded:
        summary["database_error"] = unrecorded
    summary["stage_seconds"] = {name: round(seconds, 3) for name, seconds in clock.seconds.items()}
    summary["ocr_seconds_total"] = round(
        sum(page.ocr_seconds for plan in new_plans for page in plan.pages.values()), 3
    )
    publish_summary(summary)
    return summary


def summarize(documents: list[dict], failures: list[Failure], seconds: float) -> dict:
    failed_paths = {f.source_path for f in failures if f.page_number == 0}
    ingested = [doc for doc in documents if doc["status"] == "ingested"]
    return {
        "documents_new": len(ingested),
        "documents_unchanged": sum(doc["status"] == "unchanged" for doc in documents),
        "documents_failed": len(failed_paths),
        "pages": sum(doc["pages"] for doc in ingested),
        "ocr_pages": sum(doc["ocr_pages"] for doc in ingested),
        "chunks_written": sum(doc["chunks"] for doc in ingested),
        "citations": sum(doc["citations"] for doc in ingested),
        "rows_written": sum(doc["rows_written"] for doc in ingested),
        "failures": [{"path": f.source_path, "page": f.page_number, "stage": f.stage, "reason": f.reason} for f in failures],
        "documents": documents,
        "seconds": round(seconds, 2),
    }


def publish_summary(summary: dict) -> None:
    rows = [
        {k: doc.get(k, "") for k in ("path", "status", "pages", "ocr_pages", "chunks", "citations", "node")}
        for doc in summary["documents"]
    ]
    rows += [{"path": f["path"], "status": f"failed: {f['reason']}", "pages": f["page"]} for f in summary["failures"]]
    create_table_artifact(key="ingest-summary", table=rows, description="Documents ingested by this run")
