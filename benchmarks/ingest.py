"""Ingest and search benchmark: `make bench`.

Measures, on this machine: pages/s for text-layer pages and for OCR pages, seconds per stage, the overlap ratio
(ingest wall time / (summed tesseract time / OCR workers); 1.0 means the other stages hide entirely behind OCR),
and search latency p50/p99 over the ingested samples and over 100k synthetic passages.
Prints a Markdown report (also written to benchmarks/results/ingest.md).
"""

from __future__ import annotations

import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "corpus"  # court filings copied from the shared corpus (SOURCES.md there)
SCRATCH = Path(tempfile.mkdtemp(prefix="docintel-bench-"))
os.environ["PREFECT_HOME"] = str(SCRATCH / "prefect")  # no OCR cache from earlier runs
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["DOCINTEL_DB_URI"] = str(SCRATCH / "lancedb")
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import docintel  # noqa: E402,F401
from data.make_scanned_sample import make_scan  # noqa: E402
from docintel.settings import get_settings  # noqa: E402
from tasks.search import search  # noqa: E402
from tasks.store import CHUNKS, Store, chunk_schema  # noqa: E402

QUERIES = [
    "executive orders limiting gatherings during the pandemic",
    "standard for a preliminary injunction",
    "notice of appeal docketed",
    "extension of the discovery cut-off",
    "border search of electronic devices",
    "Free Exercise Clause strict scrutiny",
    "jurisdiction over an interlocutory appeal",
    "attorney fees under 42 U.S.C. § 1988",
    "mootness of a challenge to an expired order",
    "standard of review for abuse of discretion",
]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def latencies(repeats: int = 5) -> list[float]:
    search(QUERIES[0])  # load the query encoder once
    timings = []
    for _ in range(repeats):
        for query in QUERIES:
            started = time.perf_counter()
            search(query)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def run_ingest(paths: list[Path]) -> dict:
    from flows.ingest import ingest_documents

    started = time.perf_counter()
    summary = ingest_documents([str(p) for p in paths])
    summary["wall_with_prefect"] = time.perf_counter() - started
    return summary


def synthetic_store(rows: int, dimension: int) -> Store:
    """100k passages of real legal sentences with random unit vectors (flat-search cost does not depend on them)."""
    sentences = (REPO / "tests" / "citations" / "data" / "scotus-slip-opinion.txt").read_text().split(". ")
    rng = random.Random(1)
    store = Store(str(SCRATCH / "synthetic"))
    table = store.table(CHUNKS, chunk_schema(dimension))
    vectors = np.random.default_rng(1).standard_normal((rows, dimension)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for start in range(0, rows, 20_000):
        batch = [
            {
                "chunk_id": f"c{i}", "document_id": f"d{i // 50}", "source_path": f"/synthetic/{i // 50}.pdf",
                "page_number": i % 50 + 1, "page_start": 0, "page_end": 800, "doc_start": 0, "doc_end": 800,
                "text": ". ".join(rng.choices(sentences, k=6)), "citations": [], "embedding_model": "synthetic",
                "vector": vectors[i].tolist(),
            }
            for i in range(start, min(rows, start + 20_000))
        ]  # fmt: skip
        table.add(batch)
    store.refresh_indexes()
    return store


def main() -> None:
    settings = get_settings()
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
             f"OCR workers {settings.ocr_workers}, DPI {settings.dpi}", ""]  # fmt: skip

    text_pdfs = sorted(p for p in (CORPUS / "court").glob("*.pdf") if "cand.203070" not in p.name)
    text_run = run_ingest(text_pdfs)
    text_pages = text_run["pages"] - text_run["ocr_pages"]

    scans = SCRATCH / "scans"
    scans.mkdir()
    for name in ("ca6_1-3.pdf", "gov.uscourts.cacd.652774.40.0.pdf", "ca3_003112692106.pdf", "ca5_00516242060.pdf"):
        make_scan(CORPUS / "court" / name, scans / f"scan-{name}")
    ocr_run = run_ingest(sorted(scans.glob("*.pdf")))
    ocr_alone = ocr_run["ocr_seconds_total"] / settings.ocr_workers

    lines += [
        "| run | documents | pages | OCR pages | flow seconds | pages/s |",
        "|---|---|---|---|---|---|",
        f"| text layer | {text_run['documents_new']} | {text_run['pages']} | {text_run['ocr_pages']} | "
        f"{text_run['seconds']:.1f} | {text_pages / text_run['seconds']:.1f} |",
        f"| scanned (OCR) | {ocr_run['documents_new']} | {ocr_run['pages']} | {ocr_run['ocr_pages']} | "
        f"{ocr_run['seconds']:.1f} | {ocr_run['ocr_pages'] / ocr_run['seconds']:.2f} |",
        "",
        "Stage seconds (embeddings: time with a batch in flight on its own runner; the rest: the flow thread):",
        f"text-layer run {text_run['stage_seconds']}; OCR run {ocr_run['stage_seconds']}",
        f"Summed tesseract time {ocr_run['ocr_seconds_total']:.1f} s over {ocr_run['ocr_pages']} pages "
        f"({ocr_run['ocr_seconds_total'] / ocr_run['ocr_pages']:.2f} s/page); OCR alone on {settings.ocr_workers} "
        f"workers {ocr_alone:.1f} s; whole ingest {ocr_run['seconds']:.1f} s; "
        f"overlap ratio **{ocr_run['seconds'] / ocr_alone:.2f}** (target at most 1.3)",
        f"Prefect start-up and flow-run overhead on top: {text_run['wall_with_prefect'] - text_run['seconds']:.1f} s "
        "(first flow run in the process)",
        "",
    ]
    sample_timings = latencies()
    lines.append(f"Search over the ingested samples ({Store(settings.db_uri).count(CHUNKS)} passages): "
                 f"p50 {percentile(sample_timings, 50):.1f} ms, p99 {percentile(sample_timings, 99):.1f} ms")  # fmt: skip

    synthetic_store(100_000, 384)
    os.environ["DOCINTEL_DB_URI"] = str(SCRATCH / "synthetic")
    get_settings.cache_clear()
    synthetic_timings = latencies()
    lines.append(f"Search over 100,000 synthetic passages: p50 {percentile(synthetic_timings, 50):.1f} ms, "
                 f"p99 {percentile(synthetic_timings, 99):.1f} ms")  # fmt: skip

    report = "\n".join(lines)
    print(report)
    results = REPO / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / "ingest.md").write_text(report + "\n")
    shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
