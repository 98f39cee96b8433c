"""Hybrid retrieval over complete documents: query handling, vector and full-text candidates, fusion, reranking.

1. The query is parsed (tasks/query_parse.py): a named document scopes the search, a cited authority filters it to
   the passages citing it, a quoted phrase must appear verbatim (case and spacing aside). A constraint that no
   passage meets is dropped and said so in ``SearchResult.notes``, never silently.
2. Vector (MiniLM, cosine) and full-text (LanceDB BM25) candidates under the same filters; the full-text search runs
   in a side thread while the query is embedded (both release the GIL), which takes its cost off the latency.
3. Fusion: reciprocal rank (default), weighted scores, or one retriever alone (``search_fusion``).
4. Reranking (``search_rerank``): the lexical/proximity reranker of tasks/rerank.py.
benchmarks/retrieval.py measures every choice; the defaults in settings are the best measured.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from docintel.settings import Settings, get_settings
from models.backends import embedder
from tasks.store import CHUNKS, CITATIONS, DOCUMENTS, STATUS_COMPLETE, Store, _quote, open_store

RRF_K = 60  # the constant of Cormack et al. (2009); damps the weight of the very first ranks
_full_text_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="full-text-search")


@dataclass
class SearchFilters:
    document: str = ""  # document id (or prefix), source path or file name
    page: int = 0
    citation: str = ""  # an authority key ("410 U.S. 113") or a citation as typed; matched to the chunks' lists
    # Filters on the authorities a passage cites (what the citations table stores: court, year and parties of
    # each cited case). Documents themselves carry no court, date or party metadata in the store.
    cited_court: str = ""  # e.g. "scotus", "ca1" (eyecite court ids), matched case-insensitively
    cited_party: str = ""  # a party name of a cited case, substring, case-insensitive
    cited_year_from: int = 0
    cited_year_to: int = 0
    documents: list[str] = field(default_factory=list)  # exact document ids (set by query parsing)

    def where(self, store: Store) -> str:
        clauses = []
        incomplete = _incomplete(store)
        if incomplete:
            clauses.append("document_id NOT IN (" + ", ".join(f"'{_quote(i)}'" for i in incomplete) + ")")
        if self.document:
            ids = [row["document_id"] for row in store.find_documents(self.document)] or ["<none>"]
            clauses.append(_in("document_id", ids))
        if self.documents:
            clauses.append(_in("document_id", self.documents))
        if self.page:
            clauses.append(f"page_number = {int(self.page)}")
        if self.citation:
            key = _authority_key(self.citation)
            clauses.append(f"array_has(citations, '{_quote(key)}')")
        cited = self._cited_authorities(store)
        if cited is not None:
            clauses.append("array_has_any(citations, make_array(" + ", ".join(f"'{_quote(k)}'" for k in cited or ["<none>"]) + "))")
        return " AND ".join(clauses)

    def _cited_authorities(self, store: Store) -> list[str] | None:
        if not (self.cited_court or self.cited_party or self.cited_year_from or self.cited_year_to):
            return None
        keys = []
        for row in store.rows(CITATIONS, columns=["authority", "normalized", "court", "year", "plaintiff", "defendant"]):
            if self.cited_court and (row["court"] or "").lower() != self.cited_court.lower():
                continue
            if self.cited_party and self.cited_party.lower() not in f"{row['plaintiff']} {row['defendant']}".lower():
                continue
            year = int(row["year"]) if (row["year"] or "").isdigit() else 0
            if (self.cited_year_from and year < self.cited_year_from) or (self.cited_year_to and (not year or year > self.cited_year_to)):
                continue
            keys.append(row["authority"] or row["normalized"])
        return sorted(set(keys))


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{_quote(v)}'" for v in values) + ")"


def _authority_key(text: str) -> str:
    try:
        from citations import authority_key
    except ImportError:
        return text.strip()
    return authority_key(text) or text.strip()


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
    heading: str = ""  # the headings the passage sits under, e.g. "ARTICLE I Definitions > 1.1 Definitions"
    similarity: float = 0.0  # cosine similarity of the passage to the query (0 when only full-text found it)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    hits: list[Hit]
    query: str
    retrieval_text: str = ""
    documents: list[str] = field(default_factory=list)  # document ids the query named
    phrases: list[str] = field(default_factory=list)  # quoted phrases every hit contains
    citations: list[str] = field(default_factory=list)  # authority keys every hit cites
    notes: list[str] = field(default_factory=list)
    latency_ms: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


_COLUMNS = ["chunk_id", "document_id", "source_path", "page_number", "page_start", "page_end", "doc_start", "doc_end",
            "text", "citations"]  # fmt: skip
_FTS_SAFE = re.compile(r"[^\w§]+")

# Per-process caches. A document id is the SHA-256 of the file's bytes, so what is derived from one never goes stale.
_documents_cache: dict[tuple[str, int], list[dict]] = {}
_headings_cache: dict[str, "_HeadingIndex"] = {}


def _documents(store: Store) -> list[dict]:
    table = store.table(DOCUMENTS)
    if table is None:
        return []
    key = (store.uri, table.version)
    if key not in _documents_cache:
        _documents_cache.clear()
        _documents_cache[key] = table.search().select(["document_id", "source_path", "file_name", "status"]).limit(None).to_list()
    return _documents_cache[key]


def _incomplete(store: Store) -> list[str]:
    return [row["document_id"] for row in _documents(store) if row["status"] != STATUS_COMPLETE]


def _vector_candidates(table, vector: list[float], where: str, limit: int, columns: list[str]) -> list[dict]:
    query = table.search(vector, vector_column_name="vector").distance_type("cosine").select(columns + ["_distance"])
    query = query.limit(limit)
    if where:
        query = query.where(where, prefilter=True)
    return query.to_list()


def _has_fts(table) -> bool:
    return any(index.index_type == "FTS" for index in table.list_indices())


def _text_candidates(table, text: str, where: str, limit: int, columns: list[str]) -> list[dict]:
    text = _FTS_SAFE.sub(" ", text).strip()
    if not text or not _has_fts(table):
        return []
    query = table.search(text, query_type="fts", fts_columns="text").select(columns + ["_score"]).limit(limit)
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


def weighted_fusion(vector_rows: list[dict], text_rows: list[dict], vector_weight: float) -> list[tuple[float, dict]]:
    """Convex combination of min-max-scaled cosine similarity and BM25 (a retriever that missed a row gives 0)."""

    def scaled(rows: list[dict], value) -> dict[str, float]:
        if not rows:
            return {}
        values = [value(row) for row in rows]
        low, high = min(values), max(values)
        return {row["chunk_id"]: (v - low) / ((high - low) or 1.0) for row, v in zip(rows, values)}

    vector_scores = scaled(vector_rows, lambda row: 1.0 - row["_distance"])
    text_scores = scaled(text_rows, lambda row: row["_score"])
    rows = {row["chunk_id"]: row for row in text_rows} | {row["chunk_id"]: row for row in vector_rows}
    fused = [
        (vector_weight * vector_scores.get(cid, 0.0) + (1 - vector_weight) * text_scores.get(cid, 0.0), row)
        for cid, row in rows.items()
    ]
    return sorted(fused, key=lambda item: -item[0])


def _phrase_clause(phrase: str) -> str:
    """SQL for "the chunk text contains this phrase", case-insensitive, any whitespace between its words."""
    words = phrase.split()
    pattern = r"\s+".join(re.escape(w) for w in words)
    return f"regexp_like(text, '{_quote(pattern)}', 'i')"


class _HeadingIndex:
    """Heading context of any span of one document, from its page texts: the structural blocks of each page and the
    heading stack after each block, looked up by bisection (the same result as tasks.chunking.chunk_headings)."""

    def __init__(self, pages: list[dict]):
        from tasks.chunking import heading_context, stack_after, structure_blocks

        self._context = heading_context
        self.pages: dict[int, tuple[list[int], list[list[tuple[int, str]]], list[tuple[int, str]]]] = {}
        stack: list[tuple[int, str]] = []
        for page in pages:
            blocks = [b for b in structure_blocks(page["text"]) if b.level and b.heading]
            starts, stacks, running = [], [], list(stack)
            for block in blocks:
                running = [item for item in running if item[0] < block.level] if running and running[-1][0] >= block.level else running
                running = running + [(block.level, block.heading)]
                starts.append(block.start)
                stacks.append(running)
            self.pages[page["page_number"]] = (starts, stacks, stack)
            stack = stack_after(blocks, stack)

    def at(self, page_number: int, start: int, end: int) -> str:
        if page_number not in self.pages:
            return ""
        starts, stacks, initial = self.pages[page_number]
        index = bisect_right(starts, max(start, end - 1)) - 1
        return self._context([heading for _, heading in (stacks[index] if index >= 0 else initial)])


def _headings(store: Store, rows: list[dict]) -> list[str]:
    """Heading context of each row: the stored column when the store has one, else derived from the page text
    (once per document and process; a document id names its bytes, so this never goes stale)."""
    out = []
    for row in rows:
        if row.get("heading") is not None:
            out.append(row["heading"])
            continue
        index = _headings_cache.get(row["document_id"])
        if index is None:
            index = _headings_cache[row["document_id"]] = _HeadingIndex(store.pages(row["document_id"]))
        out.append(index.at(row["page_number"], row["page_start"], row["page_end"]))
    return out


def search_with_details(
    query: str, k: int | None = None, filters: SearchFilters | None = None, settings: Settings | None = None
) -> SearchResult:
    started = time.perf_counter()
    settings = settings or get_settings()
    k = k or settings.search_k
    result = SearchResult(hits=[], query=query, retrieval_text=query)
    store = open_store(settings.db_uri)
    table = store.table(CHUNKS)
    if table is None or not query.strip():
        return result
    filters = filters or SearchFilters()
    columns = _COLUMNS + (["heading"] if "heading" in table.schema.names else [])
    base_where = filters.where(store)
    boost_documents: set[str] = set()
    constraints: list[str] = []
    if settings.search_query_parsing:
        from tasks.query_parse import parse_query

        parsed = parse_query(query, _documents(store))
        result.retrieval_text = parsed.retrieval_text
        result.notes += parsed.notes
        boost_documents = set(parsed.boost_documents)
        if parsed.documents and not (filters.document or filters.documents):
            constraints.append(_in("document_id", parsed.documents))
            result.documents = parsed.documents
        for phrase in parsed.phrases:
            constraints.append(_phrase_clause(phrase))
            result.phrases.append(phrase)
        for key in parsed.citations:
            constraints.append(f"array_has(citations, '{_quote(key)}')")
            result.citations.append(key)
        # keep, in order (document, phrases, citations), each constraint that still leaves some passage; say which
        # were dropped (a misspelt phrase, an authority never cited) rather than answer from nothing
        kept: list[str] = []
        for constraint in constraints:
            if table.count_rows(" AND ".join(c for c in [base_where, *kept, constraint] if c)) > 0:
                kept.append(constraint)
                continue
            result.notes.append(f"no passage matches {_describe(constraint)}; searched without it")
            result.phrases = [p for p in result.phrases if _phrase_clause(p) != constraint]
            result.citations = [c for c in result.citations if f"array_has(citations, '{_quote(c)}')" != constraint]
            if constraint.startswith("document_id IN"):
                result.documents = []
        constraints = kept
    where = " AND ".join(c for c in [base_where, *constraints] if c)
    text = result.retrieval_text
    limit = max(settings.search_candidates, k)
    fusion = settings.search_fusion
    text_search = _full_text_thread.submit(_text_candidates, table, text, where, limit, columns) if fusion != "vector" else None
    vector_rows = []
    if fusion != "bm25":
        vector_rows = _vector_candidates(table, embedder(settings).embed_query(text), where, limit, columns)
    text_rows = text_search.result() if text_search else []
    if fusion == "weighted":
        fused = weighted_fusion(vector_rows, text_rows, settings.search_vector_weight)
    else:
        fused = reciprocal_rank_fusion(*[r for r in (vector_rows, text_rows) if r or fusion != "rrf"])
    if boost_documents:
        top = max((s for s, _ in fused), default=0.0)
        fused = sorted(((s + (0.25 * top if row["document_id"] in boost_documents else 0.0), row) for s, row in fused),
                       key=lambda item: -item[0])  # fmt: skip
    # headings: of every candidate for the reranker, else of the hits returned
    ranked_rows = [row for _, row in (fused if settings.search_rerank != "none" else fused[:k])]
    heading_of = {row["chunk_id"]: h for row, h in zip(ranked_rows, _headings(store, ranked_rows))}
    if settings.search_rerank == "lexical":
        from tasks.rerank import rerank

        fused = rerank(text, fused, [heading_of[row["chunk_id"]] for _, row in fused])
    similarity = {row["chunk_id"]: 1.0 - row["_distance"] for row in vector_rows}
    result.hits = [
        Hit(
            chunk_id=row["chunk_id"], document_id=row["document_id"], source=row["source_path"],
            page=row["page_number"], text=row["text"], score=round(score, 6), start=row["doc_start"],
            end=row["doc_end"], page_start=row["page_start"], page_end=row["page_end"],
            citations=list(row["citations"] or []), heading=heading_of.get(row["chunk_id"], ""),
            similarity=round(similarity.get(row["chunk_id"], 0.0), 4),
        )  # fmt: skip
        for score, row in fused[:k]
    ]
    result.latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return result


def _describe(clause: str) -> str:
    if clause.startswith("regexp_like"):
        return "the quoted phrase " + clause.split("'", 2)[1].replace(r"\s+", " ").replace("\\", "")
    if clause.startswith("array_has"):
        return "the citation " + clause.split("'", 2)[1]
    return "the named document"


def search(query: str, k: int | None = None, filters: SearchFilters | None = None, settings: Settings | None = None) -> list[Hit]:
    return search_with_details(query, k, filters, settings).hits
