"""Retrieval benchmark on the LegalBench-RAG dev set in /work/shared/retrieval-dev (character-span gold).

    python benchmarks/retrieval.py                       # the default settings, all queries
    python benchmarks/retrieval.py --variants all        # every fusion / rerank / query-handling variant
    python benchmarks/retrieval.py --variants default,vector,bm25 --json out.json
    python benchmarks/retrieval.py --chunk-target 500 --chunk-overlap 100 --no-structure   # another chunking

The corpus is ingested as .txt through the real pipeline (``flows.ingest.ingest_documents``: real Prefect flow,
chunker, citation finder, MiniLM embedder, LanceDB store) into a database cached under ``--cache`` by a hash of the
corpus, the chunking code and the chunking settings, so tuning the search side costs seconds, not minutes.
Metrics are LegalBench-RAG's (see the dev set's README): precision@k and recall@k over characters, hit@k, per subset
and overall, k = 1, 4, 16, 64; latency is the search call alone (query parsing, embedding, search, fusion,
reranking), never the ingest, over three passes of the queries (108 searches).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEV = Path(os.environ.get("RETRIEVAL_DEV", ROOT.parent / "shared" / "retrieval-dev"))
KS = (1, 4, 16, 64)
LATENCY_PASSES = 3

# Search variants: settings overrides on top of the defaults (see docintel/settings.py, "Search and answers").
VARIANTS: dict[str, dict] = {
    "default": {},
    "plain-rrf": {"search_fusion": "rrf", "search_rerank": "none", "search_query_parsing": False},
    "vector": {"search_fusion": "vector", "search_rerank": "none"},
    "bm25": {"search_fusion": "bm25", "search_rerank": "none"},
    "rrf": {"search_fusion": "rrf", "search_rerank": "none"},
    "weighted": {"search_fusion": "weighted", "search_rerank": "none"},
    "rrf+rerank": {"search_fusion": "rrf", "search_rerank": "lexical"},
    "weighted+rerank": {"search_fusion": "weighted", "search_rerank": "lexical"},
    "weighted-0.3+rerank": {"search_fusion": "weighted", "search_vector_weight": 0.3, "search_rerank": "lexical"},
    "weighted-0.7+rerank": {"search_fusion": "weighted", "search_vector_weight": 0.7, "search_rerank": "lexical"},
    "rrf+rerank-200": {"search_fusion": "rrf", "search_rerank": "lexical", "search_candidates": 200},
    "no-parsing": {"search_query_parsing": False},
}


def _read_queries() -> list[dict]:
    return [json.loads(line) for line in (DEV / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus_files() -> list[Path]:
    return sorted(p for p in (DEV / "corpus").rglob("*.txt") if p.is_file())


def cache_key(chunk_env: dict) -> str:
    digest = hashlib.sha256()
    for path in corpus_files():
        digest.update(str(path.relative_to(DEV / "corpus")).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for module in ("tasks/chunking.py", "tasks/embed.py", "models/local_embedder.py"):
        digest.update((ROOT / module).read_bytes())
    digest.update(json.dumps(chunk_env, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _embed_headings() -> None:
    """Experiment for a proposed pipeline change: embed each passage with its heading context on a line before it
    (tasks.chunking.embedding_text); the stored text and offsets stay exactly as they are."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    import tasks.embed
    from models.backends import embedder
    from tasks.chunking import embedding_text

    @task(name="embed-batch", cache_policy=NO_CACHE)
    def embed_batch_with_headings(chunks):
        vectors = embedder().embed_documents([embedding_text(chunk) for chunk in chunks])
        for chunk, vector in zip(chunks, vectors, strict=True):
            chunk.vector = vector
        return chunks

    tasks.embed.embed_batch = embed_batch_with_headings


def ingest(db_uri: Path) -> dict:
    """Ingest the corpus with the real flow (Prefect starts a temporary local server in this process)."""
    from flows.ingest import ingest_documents

    started = time.perf_counter()
    summary = ingest_documents([str(DEV / "corpus")])
    if summary["documents_failed"] or summary["failures"]:
        raise SystemExit(f"ingest failed: {summary['failures']}")
    return {"seconds": round(time.perf_counter() - started, 1), "chunks": summary["chunks_written"]}


def check_offsets(db_uri: str) -> None:
    """A single-page .txt: the stored page text equals the file read with universal newlines, so spans compare."""
    from tasks.store import open_store

    store = open_store(db_uri)
    for document in store.documents():
        pages = store.pages(document["document_id"])
        expected = Path(document["source_path"]).read_text(encoding="utf-8")
        assert len(pages) == 1 and pages[0]["text"] == expected, document["source_path"]


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def score_query(passages: list[tuple[str, int, int]], snippets: list[dict]) -> dict:
    """LegalBench-RAG metrics for one query. passages: ranked (file_path, start, end); file paths relative to corpus/."""
    gold: dict[str, list[tuple[int, int]]] = {}
    for snippet in snippets:
        gold.setdefault(snippet["file_path"], []).append(tuple(snippet["span"]))
    gold = {path: _merge(spans) for path, spans in gold.items()}
    gold_chars = sum(end - start for spans in gold.values() for start, end in spans)
    out = {}
    for k in KS:
        top = passages[:k]
        retrieved = sum(end - start for _, start, end in top)
        relevant = sum(_overlap((start, end), span) for path, start, end in top for span in gold.get(path, []))
        covered = 0
        for path, spans in gold.items():
            union = _merge([(start, end) for p, start, end in top if p == path])
            covered += sum(_overlap(u, span) for u in union for span in spans)
        out[f"precision@{k}"] = relevant / retrieved if retrieved else 0.0
        out[f"recall@{k}"] = covered / gold_chars if gold_chars else 0.0
        out[f"hit@{k}"] = float(relevant > 0)
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def run_variant(name: str, overrides: dict, queries: list[dict], corpus_root: Path) -> dict:
    from docintel.settings import get_settings
    from models.backends import embedder
    from tasks.search import search

    settings = get_settings().model_copy(update=overrides)
    search("warm-up query about the agreement", 4, settings=settings)  # model load and caches, outside the timings
    per_query, latencies, embedding = [], [], []
    for timing_pass in range(LATENCY_PASSES):  # the first pass also scores; p99 over 36 searches would be the max
        for query in queries:
            started = time.perf_counter()  # the query embedding alone, to tell the machine's load from the search's cost
            embedder(settings).embed_query(query["query"])
            embedding.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            hits = search(query["query"], max(KS), settings=settings)
            latencies.append((time.perf_counter() - started) * 1000)
            if timing_pass == 0:
                passages = [(str(Path(hit.source).resolve().relative_to(corpus_root)), hit.start, hit.end) for hit in hits]
                per_query.append({"query_id": query["query_id"], **score_query(passages, query["snippets"])})
    result = {"variant": name, "overrides": overrides, "subsets": {}}
    for subset in ("maud", "privacy_qa", "overall"):
        rows = [q for q in per_query if subset == "overall" or q["query_id"].startswith(subset + "-")]
        result["subsets"][subset] = {
            metric: round(100 * statistics.mean(row[metric] for row in rows), 1)
            for metric in rows[0] if metric != "query_id"
        } | {"queries": len(rows)}
    latencies.sort()
    result["latency_ms"] = {
        "p50": round(statistics.median(latencies), 1),
        "p99": round(latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))], 1),
        "embed_query_p50": round(statistics.median(embedding), 1),
    }
    result["per_query"] = per_query
    return result


def markdown(results: list[dict]) -> str:
    lines = [
        "Cells: precision / recall / hit in %. Latency: one search call (parse, embed, search, fuse, rerank);",
        "in brackets the median time of the query embedding alone, measured beside it (a gauge of the machine's load).",
        "",
        "| variant | subset | @1 | @4 | @16 | @64 | p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for subset, m in result["subsets"].items():
            cells = [f"{m[f'precision@{k}']} / {m[f'recall@{k}']} / {m[f'hit@{k}']}" for k in KS]
            timing = result["latency_ms"]
            latency = f"{timing['p50']} / {timing['p99']} ({timing['embed_query_p50']})" if subset == "overall" else ""
            lines.append(f"| {result['variant']} | {subset} ({m['queries']}) | " + " | ".join(cells) + f" | {latency} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="default", help=f"comma-separated, or 'all': {', '.join(VARIANTS)}")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "docintel-retrieval-bench"))
    parser.add_argument("--chunk-target", type=int, default=None, help="chunk_target_chars for the ingest")
    parser.add_argument("--chunk-overlap", type=int, default=None, help="chunk_overlap_chars for the ingest")
    parser.add_argument("--no-structure", action="store_true", help="plain sentence windows (chunk_structure=false)")
    parser.add_argument("--embed-headings", action="store_true",
                        help="experiment: embed heading context + text (needs the pipeline change proposed in the report)")
    parser.add_argument("--set", action="append", default=[], help="extra search setting for every variant, KEY=JSON")
    parser.add_argument("--json", dest="json_out", default="", help="also write the full results (per query) here")
    args = parser.parse_args()

    chunk_env = {}
    if args.chunk_target is not None:
        chunk_env["DOCINTEL_CHUNK_TARGET_CHARS"] = str(args.chunk_target)
    if args.chunk_overlap is not None:
        chunk_env["DOCINTEL_CHUNK_OVERLAP_CHARS"] = str(args.chunk_overlap)
    if args.no_structure:
        chunk_env["DOCINTEL_CHUNK_STRUCTURE"] = "false"
    if args.embed_headings:
        chunk_env["EXPERIMENT_EMBED_HEADINGS"] = "1"
    db_uri = Path(args.cache) / cache_key(chunk_env) / "lancedb"
    os.environ.update(chunk_env)
    os.environ["DOCINTEL_DB_URI"] = str(db_uri)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_HOME", str(Path(args.cache) / "prefect-home"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    db_uri.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    import docintel  # noqa: F401  (offline environment)
    from docintel.settings import get_settings

    get_settings.cache_clear()
    ready = db_uri.parent / "READY"
    if not ready.exists():
        print(f"ingesting {DEV / 'corpus'} into {db_uri} ...", file=sys.stderr)
        if args.embed_headings:
            _embed_headings()
        info = ingest(db_uri)
        ready.write_text(json.dumps(info))
        print(f"ingested: {info}", file=sys.stderr)
    info = json.loads(ready.read_text())
    check_offsets(str(db_uri))

    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    extra = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.set)}
    queries = _read_queries()
    corpus_root = (DEV / "corpus").resolve()
    results = [run_variant(name, {**VARIANTS[name], **extra}, queries, corpus_root) for name in names]
    settings = get_settings()
    print(
        f"corpus: {len(corpus_files())} files, {info['chunks']} chunks (target {settings.chunk_target_chars}, "
        f"overlap {settings.chunk_overlap_chars}, structure {settings.chunk_structure}); ingest {info['seconds']} s"
    )
    print(markdown(results))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"ingest": info, "results": results}, indent=2))


if __name__ == "__main__":
    main()
