"""Stage 7: LanceDB on disk (or any LanceDB URI). Every write is an upsert by id, so a crash and a re-run never
duplicate rows; a document becomes visible to search only once all its rows are written (status ``complete``)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import datetime, timezone
from functools import lru_cache
from typing import TypeVar

import lancedb
import pyarrow as pa
from lancedb.index import FTS

from docintel.records import Chunk, Failure, PageText

T = TypeVar("T")

DOCUMENTS, PAGES, CHUNKS, CITATIONS, FAILURES, META = "documents", "pages", "chunks", "citations", "failures", "meta"

STATUS_INGESTING, STATUS_COMPLETE = "ingesting", "complete"

# The id every upsert matches on. Declared to Lance as the table's (unenforced) primary key: only then does a
# merge_insert detect that another node inserted the same new id concurrently (and retry) instead of committing a
# duplicate row (lance-format/lance#4585: new rows touch no existing fragment, so nothing else sees the conflict).
KEYS = {DOCUMENTS: "document_id", PAGES: "page_id", CHUNKS: "chunk_id", CITATIONS: "citation_id",
        FAILURES: "failure_id", META: "key"}  # fmt: skip
PRIMARY_KEY_MARK = "lance-schema:unenforced-primary-key"


def with_primary_key(schema: pa.Schema, key: str) -> pa.Schema:
    """The schema with ``key`` non-nullable and marked as the primary key (Lance requires a non-null key)."""
    index = schema.get_field_index(key)
    field = schema.field(index).with_nullable(False).with_metadata({PRIMARY_KEY_MARK: "true"})
    return schema.set(index, field)


def has_primary_key(schema: pa.Schema, key: str) -> bool:
    metadata = schema.field(key).metadata or {}
    return any(name.decode().startswith(PRIMARY_KEY_MARK) for name in metadata)
STAGING_CHUNKS = "chunks_reembed"


class StorageError(Exception):
    """The database could not take a write; the message says why in words."""

    plain_reason = True


class EmbeddingMismatchError(Exception):
    """The database's vectors come from another embedding model or dimension than the one configured."""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


TIMESTAMP = pa.timestamp("us", tz="UTC")

DOCUMENT_SCHEMA = pa.schema([
    ("document_id", pa.string()), ("source_path", pa.string()), ("file_name", pa.string()), ("kind", pa.string()),
    ("size_bytes", pa.int64()), ("page_count", pa.int32()), ("status", pa.string()), ("chunk_count", pa.int32()),
    ("citation_count", pa.int32()), ("failed_pages", pa.int32()), ("embedding_model", pa.string()),
    ("node", pa.string()), ("ingested_at", TIMESTAMP), ("note", pa.string()),
])  # fmt: skip
PAGE_SCHEMA = pa.schema([
    ("page_id", pa.string()), ("document_id", pa.string()), ("page_number", pa.int32()), ("method", pa.string()),
    ("text", pa.string()), ("char_count", pa.int32()), ("ocr_seconds", pa.float32()), ("words_json", pa.string()),
    ("error", pa.string()),
])  # fmt: skip
CITATION_SCHEMA = pa.schema([
    ("citation_id", pa.string()), ("document_id", pa.string()), ("source_path", pa.string()),
    ("page_number", pa.int32()), ("kind", pa.string()), ("matched_text", pa.string()), ("normalized", pa.string()),
    ("authority", pa.string()), ("start", pa.int32()), ("end", pa.int32()), ("volume", pa.string()),
    ("reporter", pa.string()), ("page", pa.string()), ("pin_cite", pa.string()), ("court", pa.string()),
    ("year", pa.string()), ("plaintiff", pa.string()), ("defendant", pa.string()), ("parenthetical", pa.string()),
    ("title", pa.string()), ("section", pa.string()),
])  # fmt: skip
FAILURE_SCHEMA = pa.schema([
    ("failure_id", pa.string()), ("source_path", pa.string()), ("document_id", pa.string()),
    ("page_number", pa.int32()), ("stage", pa.string()), ("reason", pa.string()), ("retry_pending", pa.bool_()),
    ("node", pa.string()), ("occurred_at", TIMESTAMP),
])  # fmt: skip
META_SCHEMA = pa.schema([("key", pa.string()), ("value", pa.string())])


def chunk_schema(dimension: int) -> pa.Schema:
    return pa.schema([
        ("chunk_id", pa.string()), ("document_id", pa.string()), ("source_path", pa.string()),
        ("page_number", pa.int32()), ("page_start", pa.int32()), ("page_end", pa.int32()), ("doc_start", pa.int64()),
        ("doc_end", pa.int64()), ("text", pa.string()), ("citations", pa.list_(pa.string())),
        ("embedding_model", pa.string()), ("vector", pa.list_(pa.float32(), dimension)), ("heading", pa.string()),
    ])  # fmt: skip


def with_commit_retries(write: Callable[[], T], attempts: int = 12) -> T:
    """Writers on two nodes can race on one table version; Lance rejects the loser's commit. Retry it.

    Lance already retries a conflicting ``merge_insert`` internally (for about 30 s), so what reaches this wrapper is
    what Lance gave up on: "Retryable commit conflict ... Please retry" (a delete, ``optimize`` or index build
    preempted by another node's write), "merge insert timed out" (its internal retries ran out under contention),
    "Too many concurrent writers". Only those are retried, with exponential backoff and jitter so two nodes do not
    collide again in lockstep (up to about a minute in all: an index build that keeps losing to other nodes' builds
    needs several seconds per try); anything else (a schema error, a missing column) is raised at once.
    """
    import logging
    import random

    def _cell_full(cell) -> bool:
        try:
            cell.cell_contents
        except ValueError:
            return False
        return True

    markers = (
        "commit conflict",  # "Retryable commit conflict for version N: ... preempted by concurrent transaction"
        "please retry",
        "preempted by concurrent",
        "too many concurrent writers",
        "merge insert timed out",
        "concurrent modification",
    )
    for attempt in range(attempts):
        try:
            return write()
        except (OSError, RuntimeError, ValueError) as error:
            message = str(error).lower()
            if attempt == attempts - 1 or not any(marker in message for marker in markers):
                raise
            cap = min(0.2 * 2**attempt, 10.0)
            delay = random.uniform(cap / 2, cap)
            logging.getLogger(__name__).info(
                "LanceDB commit conflict (attempt %d of %d), retrying in %.2f s: %s",
                attempt + 1, attempts, delay, str(error).splitlines()[0][:200],
            )
            time.sleep(delay)
            # Retry against the newest version: a table object keeps the version it read, and an index build retried
            # from there loses to the same concurrent build every time. The tables are the ones the write uses: the
            # object of a bound method (``table.optimize``) or those a lambda closes over.
            bound = getattr(write, "__self__", None)
            cells = [cell.cell_contents for cell in (getattr(write, "__closure__", None) or ()) if _cell_full(cell)]
            for table in [bound, *cells]:
                if hasattr(table, "checkout_latest") and hasattr(table, "merge_insert"):
                    try:
                        table.checkout_latest()
                    except Exception:  # noqa: BLE001 (a refresh that fails leaves the retry as it was)
                        pass
    raise AssertionError("unreachable")


class Store:
    """The database of one deployment: documents, pages, chunks (with vectors), citations, failures."""

    def __init__(self, uri: str):
        self.uri = uri
        self.db = lancedb.connect(uri)
        self._keyed: set[str] = set()  # tables known to carry their primary key

    # ---- tables -------------------------------------------------------------------------------------------------
    def table(self, name: str, schema: pa.Schema | None = None):
        if name in self.db.table_names(limit=1000):
            try:
                table = self.db.open_table(name)
                table.schema  # noqa: B018  (reads the latest version: fails on a folder without one)
            except ValueError:  # a folder without a committed version: its creation died (disk full, crash)
                if schema is None:
                    return None
                self.db.drop_table(name)
            else:  # outside the try: a failed migration must never look like a dead creation and drop the table
                return self._with_new_columns(self._keyed_table(table, name), schema)
        if schema is None:
            return None
        try:
            return self.db.create_table(name, schema=with_primary_key(schema, KEYS[name]))
        except (OSError, RuntimeError, ValueError):
            return self._keyed_table(self.db.open_table(name), name)  # another writer created it first

    def _keyed_table(self, table, name: str):
        """Tables written before primary keys were declared get theirs now (once; idempotent on every node)."""
        if name in self._keyed or name not in KEYS:
            return table
        key = KEYS[name]
        if not has_primary_key(table.schema, key):
            if table.schema.field(key).nullable:
                with_commit_retries(lambda: table.alter_columns({"path": key, "nullable": False}))
            with_commit_retries(lambda: table.set_unenforced_primary_key(key))
        self._keyed.add(name)
        return table

    def _with_new_columns(self, table, schema: pa.Schema | None):
        """A table written by an older version gets the columns added since, null in its old rows (readers fall
        back for those: e.g. search derives a missing heading from the page text)."""
        if schema is None:
            return table
        present = set(table.schema.names)
        missing = [field for field in schema if field.name not in present]
        if missing:
            try:
                with_commit_retries(lambda: table.add_columns(missing))
            except (OSError, RuntimeError, ValueError):
                table.checkout_latest()
                if any(field.name not in table.schema.names for field in missing):  # not another writer's doing
                    raise
        return table

    def _upsert(self, name: str, schema: pa.Schema, key: str, rows: list[dict]) -> int:
        if not rows:
            return 0
        table = self.table(name, schema)
        data = pa.Table.from_pylist(rows, schema=table.schema)  # the table's own schema: a non-nullable key
        with_commit_retries(
            lambda: table.merge_insert(key).when_matched_update_all().when_not_matched_insert_all().execute(data)
        )
        return len(rows)

    def _delete(self, name: str, where: str) -> None:
        table = self.table(name)
        if table is not None:
            with_commit_retries(lambda: table.delete(where))

    def rows(self, name: str, where: str | None = None, columns: list[str] | None = None) -> list[dict]:
        table = self.table(name)
        if table is None:
            return []
        query = table.search()
        if where:
            query = query.where(where)
        if columns:
            query = query.select(columns)
        return query.limit(None).to_list()

    def count(self, name: str, where: str | None = None) -> int:
        table = self.table(name)
        return 0 if table is None else table.count_rows(where)

    # ---- embedding model bookkeeping --------------------------------------------------------------------------
    def recorded_embedding(self) -> tuple[str, int] | None:
        meta = {row["key"]: row["value"] for row in self.rows(META)}
        if "embedding_model" not in meta:
            return None
        return meta["embedding_model"], int(meta["embedding_dim"])

    def check_embedding(self, model: str, dimension: int) -> None:
        recorded = self.recorded_embedding()
        if recorded and recorded != (model, dimension):
            raise EmbeddingMismatchError(
                f"database {self.uri} holds {recorded[1]}-dim vectors from '{recorded[0]}', but the configured "
                f"embedder is '{model}' ({dimension}-dim); run `docintel reembed` to switch models"
            )

    def record_embedding(self, model: str, dimension: int) -> None:
        self.check_embedding(model, dimension)
        self._upsert(META, META_SCHEMA, "key", [
            {"key": "embedding_model", "value": model}, {"key": "embedding_dim", "value": str(dimension)},
        ])  # fmt: skip

    # ---- documents ----------------------------------------------------------------------------------------------
    def document(self, document_id: str) -> dict | None:
        found = self.rows(DOCUMENTS, f"document_id = '{_quote(document_id)}'")
        return found[0] if found else None

    def documents(self) -> list[dict]:
        return sorted(self.rows(DOCUMENTS), key=lambda row: row["source_path"])

    def find_documents(self, reference: str) -> list[dict]:
        """A document by id, id prefix, path or file name."""
        return [
            row for row in self.documents()
            if row["document_id"].startswith(reference) or reference in (row["source_path"], row["file_name"])
        ]  # fmt: skip

    def incomplete_document_ids(self) -> list[str]:
        return [row["document_id"] for row in self.rows(DOCUMENTS, f"status != '{STATUS_COMPLETE}'", ["document_id"])]

    def mark_ingesting(self, document: dict) -> None:
        self._upsert(DOCUMENTS, DOCUMENT_SCHEMA, "document_id", [{**document, "status": STATUS_INGESTING}])

    def write_document(
        self, document: dict, pages: list[PageText], chunks: list[Chunk], citations: list[dict], embedding_model: str
    ) -> int:
        """Write a whole document; it turns ``complete`` (searchable) only after its rows are in. Returns rows written."""
        document = {**document, "ingested_at": _utc_now(), "embedding_model": embedding_model}
        self.mark_ingesting(document)
        dimension = len(chunks[0].vector) if chunks else 0
        written = self._upsert(PAGES, PAGE_SCHEMA, "page_id", [_page_row(page) for page in pages])
        if chunks:
            written += self._upsert(CHUNKS, chunk_schema(dimension), "chunk_id", [
                {**_chunk_row(chunk), "embedding_model": embedding_model} for chunk in chunks
            ])  # fmt: skip
        written += self._upsert(CITATIONS, CITATION_SCHEMA, "citation_id", citations)
        self._upsert(DOCUMENTS, DOCUMENT_SCHEMA, "document_id", [{**document, "status": STATUS_COMPLETE}])
        return written + 1

    def delete_document(self, document_id: str) -> None:
        where = f"document_id = '{_quote(document_id)}'"
        for name in (DOCUMENTS, CHUNKS, PAGES, CITATIONS, FAILURES):  # documents first: invisible at once
            self._delete(name, where)

    def superseded_documents(self, source_path: str, current_id: str) -> list[str]:
        """Older versions of a file at the same path, to be replaced by ``current_id``."""
        rows = self.rows(DOCUMENTS, f"source_path = '{_quote(source_path)}'", ["document_id"])
        return [row["document_id"] for row in rows if row["document_id"] != current_id]

    # ---- failures -----------------------------------------------------------------------------------------------
    def record_failures(self, failures: Iterable[Failure], node: str) -> int:
        rows = [
            {
                **asdict(failure),
                "failure_id": _failure_id(failure),
                "node": node,
                "occurred_at": _utc_now(),
            }
            for failure in failures
        ]
        return self._upsert(FAILURES, FAILURE_SCHEMA, "failure_id", rows)

    def clear_failures(self, document_id: str = "", source_path: str = "") -> None:
        if document_id:
            self._delete(FAILURES, f"document_id = '{_quote(document_id)}'")
        if source_path:
            self._delete(FAILURES, f"source_path = '{_quote(source_path)}'")

    def failures_of(self, document_id: str) -> list[dict]:
        return self.rows(FAILURES, f"document_id = '{_quote(document_id)}'")

    def failures(self) -> list[dict]:
        return sorted(self.rows(FAILURES), key=lambda row: (row["occurred_at"], row["source_path"], row["page_number"]))

    # ---- pages --------------------------------------------------------------------------------------------------
    def pages(self, document_id: str) -> list[dict]:
        rows = self.rows(PAGES, f"document_id = '{_quote(document_id)}'")
        return sorted(rows, key=lambda row: row["page_number"])

    def citations(self, where: str | None = None) -> list[dict]:
        return sorted(self.rows(CITATIONS, where), key=lambda row: (row["source_path"], row["page_number"], row["start"]))

    # ---- switching embedding models ---------------------------------------------------------------------------
    def replace_chunk_vectors(self, rows: list[dict], model: str, dimension: int) -> None:
        """Swap in re-embedded chunks. They are written to a staging table first, so a crash before the swap loses
        nothing and a crash during it is finished by `finish_interrupted_swap` on the next run."""
        schema = chunk_schema(dimension)
        if STAGING_CHUNKS in self.db.table_names(limit=1000):
            self.db.drop_table(STAGING_CHUNKS)
        staging = self.db.create_table(STAGING_CHUNKS, schema=schema)
        for start in range(0, len(rows), 5000):
            staging.add(pa.Table.from_pylist(rows[start : start + 5000], schema=schema))
        self._upsert(META, META_SCHEMA, "key", [
            {"key": "embedding_model", "value": model}, {"key": "embedding_dim", "value": str(dimension)},
        ])  # fmt: skip
        self.finish_interrupted_swap()

    def finish_interrupted_swap(self) -> None:
        if STAGING_CHUNKS not in self.db.table_names(limit=1000):
            return
        staged = self.db.open_table(STAGING_CHUNKS).to_arrow()
        if CHUNKS in self.db.table_names(limit=1000):
            self.db.drop_table(CHUNKS)
        self.db.create_table(CHUNKS, data=staged)
        self._keyed.discard(CHUNKS)  # the new table gets its primary key when next opened
        self.db.drop_table(STAGING_CHUNKS)
        self.refresh_indexes()

    # ---- indexes ------------------------------------------------------------------------------------------------
    def refresh_indexes(self) -> None:
        """Full-text index on chunk text: built once, then folded forward incrementally by ``optimize``.
        Rows not yet indexed are still searched (flat), so a failed refresh costs speed, never results."""
        table = self.table(CHUNKS)
        if table is None:
            return
        if not any(index.index_type == "FTS" for index in table.list_indices()):
            with_commit_retries(lambda: table.create_index("text", config=FTS(with_position=True), replace=True))
        else:
            with_commit_retries(table.optimize)


_RUST_SOURCE_LOCATION = re.compile(r",\s*/\S+\.rs:\d+:\d+")


def storage_error_reason(error: BaseException) -> str:
    """A database failure in words: the cause first, without the storage engine's source locations."""
    message = _RUST_SOURCE_LOCATION.sub("", str(error))
    if "No space left on device" in message:
        return "database write failed: no space left on device"
    return f"database write failed: {message[:300]}"


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _failure_id(failure: Failure) -> str:
    key = f"{failure.document_id or failure.source_path}|{failure.page_number}|{failure.stage}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _page_row(page: PageText) -> dict:
    return {
        "page_id": f"{page.document_id}:{page.page_number}",
        "document_id": page.document_id,
        "page_number": page.page_number,
        "method": page.method.value,
        "text": page.text,
        "char_count": len(page.text),
        "ocr_seconds": page.ocr_seconds,
        "words_json": json.dumps([asdict(word) for word in page.words]) if page.words else "",
        "error": page.error or "",
    }


def _chunk_row(chunk: Chunk) -> dict:
    return {
        "chunk_id": chunk.chunk_id, "document_id": chunk.document_id, "source_path": chunk.source_path,
        "page_number": chunk.page_number, "page_start": chunk.page_start, "page_end": chunk.page_end,
        "doc_start": chunk.doc_start, "doc_end": chunk.doc_end, "text": chunk.text, "citations": chunk.citations,
        "vector": chunk.vector, "heading": chunk.heading,
    }  # fmt: skip


@lru_cache(maxsize=8)
def open_store(uri: str) -> Store:
    return Store(uri)
