"""Hybrid retrieval: vector and full-text candidates fused by reciprocal rank. Only complete documents are searched."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from docintel.settings import Settings, get_settings
from models.backends import embedder
from tasks.store import CHUNKS, Store, _quote, open_store

RRF_K = 60  # the constant of Cormack et al. (2009); damps the weight of the very first ranks


@dataclass
class SearchFilters:
    document: str = ""  # document id (or prefix) or source path
    page: int = 0
    citation: str = ""  # an authority key, as stored in each chunk's citation list

    def where(self, store: Store) -> str:
        clauses = []
        incomplete = store.incomplete_document_ids()
        if incomplete:
            clauses.append("document_id NOT IN (" + ", ".join(f"'{_quote(i)}'" for i in incomplete) + ")")
        if self.document:
            ids = [row["document_id"] for row in store.find_documents(self.document)] or ["<none>"]
            clauses.append("document_id IN (" + ", ".join(f"'{_quote(i)}'" for i in ids) + ")")
        if self.page:
            clauses.append(f"page_number = {int(self.page)}")
        if self.citation:
            clauses.append(f"array_has(citations, '{_quote(self.citation)}')")
        return " AND ".join(clauses)


@dataclass
class Hit:
    chunk_id: str
    document_id: str
    source: str
    page: int
    text: str
    score: float
    start: int  # offsets of the passage in the document text (as `docintel show` returns it)
    end: int
    page_start: int
    page_end: int
    citations: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


_COLUMNS = ["chunk_id", "document_id", "source_path", "page_number", "page_start", "page_end", "doc_start", "doc_end",
            "text", "citations"]  # fmt: skip


def _vector_candidates(table, vector: list[float], where: str, limit: int) -> list[dict]:
    query = table.search(vector, vector_column_name="vector").distance_type("cosine").select(_COLUMNS + ["_distance"])
    query = query.limit(limit)
    if where:
        query = query.where(where, prefilter=True)
    return query.to_list()


def _text_candidates(table, text: str, where: str, limit: int) -> list[dict]:
    if not any(index.index_type == "FTS" for index in table.list_indices()):
        return []
    query = table.search(text, query_type="fts", fts_columns="text").select(_COLUMNS + ["_score"]).limit(limit)
    if where:
        query = query.where(where, prefilter=True)
    try:
        return query.to_list()
    except (ValueError, RuntimeError):  # a query the full-text parser rejects still gets vector results
        return []


def reciprocal_rank_fusion(*rankings: list[dict], k: int = RRF_K) -> list[tuple[float, dict]]:
    scores: dict[str, float] = {}
    rows: dict[str, dict] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking):
            scores[row["chunk_id"]] = scores.get(row["chunk_id"], 0.0) + 1.0 / (k + rank + 1)
            rows.setdefault(row["chunk_id"], row)
    return sorted(((score, rows[chunk_id]) for chunk_id, score in scores.items()), key=lambda item: -item[0])


def search(query: str, k: int | None = None, filters: SearchFilters | None = None, settings: Settings | None = None) -> list[Hit]:
    settings = settings or get_settings()
    k = k or settings.search_k
    store = open_store(settings.db_uri)
    table = store.table(CHUNKS)
    if table is None or not query.strip():
        return []
    where = (filters or SearchFilters()).where(store)
    candidates = max(k * 4, 40)
    vector = embedder(settings).embed_query(query)
    fused = reciprocal_rank_fusion(
        _vector_candidates(table, vector, where, candidates), _text_candidates(table, query, where, candidates)
    )
    return [
        Hit(
            chunk_id=row["chunk_id"], document_id=row["document_id"], source=row["source_path"],
            page=row["page_number"], text=row["text"], score=round(score, 6), start=row["doc_start"],
            end=row["doc_end"], page_start=row["page_start"], page_end=row["page_end"],
            citations=list(row["citations"] or []),
        )  # fmt: skip
        for score, row in fused[:k]
    ]


def timed_search(query: str, k: int | None = None, filters: SearchFilters | None = None) -> tuple[list[Hit], float]:
    started = time.perf_counter()
    hits = search(query, k, filters)
    return hits, (time.perf_counter() - started) * 1000
