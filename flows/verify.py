"""`verify-stack`: the operator's check that a live stack (OCR, embeddings, search, answers) works end to end.

Each check returns ``{name, passed, required, detail, seconds}``; a check named in ``informational`` is run and
reported but does not fail the stack (e.g. ``embedding-ranking`` against a random-weight test model, which cannot
rank by meaning). Checks:

- ``ocr``: a known sample page (text layer of data/samples/ca2_1-1.pdf, page 1) is rendered and read by the
  configured OCR backend; passes when it recovers at least 80% of the text layer's words. With the vLLM OCR backend
  the server's result or failure is what is reported.
- ``embeddings``: the embedder returns one L2-normalised vector per text, of one dimension (the plumbing).
- ``embedding-ranking``: a passage related to a query is closer to it than three unrelated passages.
- ``search``: a small known document (three pages on different subjects) is indexed into a temporary LanceDB, and
  for each known query the right page ranks first.
- ``answer``: the configured reasoner answers a question over that document (non-empty answer; for a model that
  only reasoned, its reasoning counts as a response).
- ``answer-citations``: the answer cites retrieved sources (the extractive backend always should).

Nothing here writes to the deployment's database: the known document goes to a temporary folder.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from docintel.settings import Settings, get_settings

REPO = Path(__file__).resolve().parent.parent
OCR_SAMPLE = REPO / "data" / "samples" / "ca2_1-1.pdf"
OCR_SAMPLE_PAGE = 1
OCR_MIN_RECALL = 0.8

KNOWN_PAGES = [
    "LEASE AGREEMENT. The Tenant shall pay the monthly rent of two thousand dollars on the first day of each month. "
    "If the rent remains unpaid for thirty days after written notice, the Landlord may terminate this lease and "
    "recover possession of the premises. The security deposit shall be returned within twenty-one days after the "
    "Tenant vacates, less any deductions for damage beyond ordinary wear and tear.",
    "EMPLOYMENT AGREEMENT. During employment and for twelve months afterwards, the Employee shall not solicit any "
    "customer of the Company nor work for a competitor within fifty miles of its headquarters. The Employee assigns "
    "to the Company every invention conceived during employment. Confidential information must not be disclosed "
    "to any third party, during or after employment.",
    "PATENT INFRINGEMENT. The jury found that the Defendant's widget infringed claims 1 and 7 of the Plaintiff's "
    "patent and awarded a reasonable royalty of four percent of net sales as damages. The court enhanced the damages "
    "because the infringement was willful, and granted a permanent injunction against further sales of the widget.",
]
KNOWN_QUERIES = [
    ("When may the landlord terminate the lease for unpaid rent?", 1),
    ("non-solicitation of customers and competitor restriction for the employee", 2),
    ("reasonable royalty damages for willful patent infringement", 3),
]
ANSWER_QUESTION = "When may the landlord terminate the lease?"
RANKING_QUERY = "The landlord may end the lease when the tenant does not pay rent."
RANKING_RELATED = "If rent is unpaid after notice, the lessor can terminate the tenancy and take back the premises."
RANKING_UNRELATED = [
    "The jury awarded a royalty for infringement of the patent claims.",
    "The employee assigns every invention to the company.",
    "Photosynthesis converts light into chemical energy in plants.",
]


def _check(name: str, fn: Callable[[], tuple[bool, str]], informational: set[str]) -> dict:
    started = time.perf_counter()
    try:
        passed, detail = fn()
    except Exception as error:  # a check that raises has failed; its reason is the detail, not a traceback
        passed, detail = False, f"{type(error).__name__}: {error}"[:500]
    return {"name": name, "passed": bool(passed), "required": name not in informational, "detail": detail,
            "seconds": round(time.perf_counter() - started, 3)}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def check_ocr(settings: Settings) -> tuple[bool, str]:
    from collections import Counter

    from models.backends import ocr_backend
    from tasks.pages import probe_pdf, render_page

    probe = probe_pdf(OCR_SAMPLE, settings)
    expected = Counter(_words(probe.pages[OCR_SAMPLE_PAGE - 1].text))
    image, _ = render_page(OCR_SAMPLE, OCR_SAMPLE_PAGE, settings)
    backend = ocr_backend(settings)
    result = backend.recognize(image, settings.dpi)
    got = Counter(_words(result.text))
    recall = sum((expected & got).values()) / max(1, sum(expected.values()))
    return recall >= OCR_MIN_RECALL, (f"{backend.name}: {recall:.0%} of the text layer's words of "
                                      f"{OCR_SAMPLE.name} page {OCR_SAMPLE_PAGE} (needs {OCR_MIN_RECALL:.0%})")


def check_embeddings(settings: Settings) -> tuple[bool, str]:
    from models.backends import embedder

    model = embedder(settings)
    texts = [RANKING_RELATED, *RANKING_UNRELATED]
    vectors = model.embed_documents(texts)
    dims = {len(v) for v in vectors}
    norms = [math.sqrt(sum(x * x for x in v)) for v in vectors]
    ok = len(vectors) == len(texts) and dims == {model.dimension} and all(abs(n - 1) < 1e-3 for n in norms)
    return ok, f"{model.model_name}: {len(vectors)} vectors for {len(texts)} texts, dimension {sorted(dims)}"


def check_embedding_ranking(settings: Settings) -> tuple[bool, str]:
    from models.backends import embedder

    model = embedder(settings)
    query = model.embed_query(RANKING_QUERY)
    vectors = model.embed_documents([RANKING_RELATED, *RANKING_UNRELATED])
    scores = [sum(a * b for a, b in zip(query, v)) for v in vectors]
    best_other = max(scores[1:])
    return scores[0] > best_other, f"related {scores[0]:.3f} vs best unrelated {best_other:.3f}"


def index_known_document(settings: Settings) -> str:
    """Chunk, embed and store the known document in ``settings.db_uri`` the way the ingest flow does."""
    import hashlib

    from docintel.records import PageMethod, PageText
    from models.backends import embedder
    from tasks.chunking import chunk_pages, page_offsets
    from tasks.store import open_store

    document_id = hashlib.sha256("\f".join(KNOWN_PAGES).encode()).hexdigest()
    source = "verify-stack-known-document.txt"
    pages = [PageText(document_id, n, text, PageMethod.PLAIN_TEXT) for n, text in enumerate(KNOWN_PAGES, 1)]
    chunks = chunk_pages(pages, source, settings.chunk_target_chars, settings.chunk_overlap_chars, page_offsets(pages),
                         settings.chunk_structure)
    model = embedder(settings)
    for chunk, vector in zip(chunks, model.embed_documents([c.text for c in chunks]), strict=True):
        chunk.vector = vector
    store = open_store(settings.db_uri)
    store.check_embedding(model.model_name, model.dimension)
    row = {"document_id": document_id, "source_path": source, "file_name": source, "kind": "txt",
           "size_bytes": sum(len(p) for p in KNOWN_PAGES), "page_count": len(pages), "chunk_count": len(chunks),
           "citation_count": 0, "failed_pages": 0, "node": settings.node_name, "note": "verify-stack"}
    store.write_document(row, pages, chunks, [], model.model_name)
    store.record_embedding(model.model_name, model.dimension)
    store.refresh_indexes()
    return document_id


def check_search(settings: Settings) -> tuple[bool, str]:
    from tasks.search import search

    results = []
    for query, page in KNOWN_QUERIES:
        hits = search(query, k=3, settings=settings)
        first = hits[0].page if hits else None
        results.append((first == page, f"{query!r}: page {first} first (expected {page})"))
    return all(ok for ok, _ in results), "; ".join(d for _, d in results)


def check_answer(settings: Settings) -> tuple[tuple[bool, str], tuple[bool, str]]:
    from tasks.answer import answer_question

    answer = answer_question(ANSWER_QUESTION, k=1, settings=settings)
    responded = bool(answer.answer and answer.relevant) or bool(answer.reasoning)
    words = len(answer.answer.split())
    detail = (f"{answer.backend}: {words} answer words, {len(answer.reasoning.split())} reasoning words, "
              f"{len(answer.sources)} sources cited, {answer.latency_ms:.0f} ms")
    cited = bool(answer.sources) and not answer.invalid_citations and answer.relevant
    pages = sorted({s.page for s in answer.sources})
    return (responded, detail), (cited, f"cited pages {pages}, invalid citations {answer.invalid_citations}")


def run_checks(settings: Settings | None = None, informational: Iterable[str] = ()) -> list[dict]:
    """All checks, in order, against the stack ``settings`` configure (default: the environment's)."""
    settings = settings or get_settings()
    info = set(informational)
    checks = [
        _check("ocr", lambda: check_ocr(settings), info),
        _check("embeddings", lambda: check_embeddings(settings), info),
        _check("embedding-ranking", lambda: check_embedding_ranking(settings), info),
    ]
    workdir = Path(tempfile.mkdtemp(prefix="docintel-verify-"))
    try:
        local = settings.model_copy(update={"db_uri": str(workdir / "lancedb")})
        indexed = _check("index", lambda: (bool(index_known_document(local)), "known 3-page document indexed"), info)
        checks.append(indexed)
        if indexed["passed"]:
            checks.append(_check("search", lambda: check_search(local), info))
            outcome: dict = {}

            def answer() -> tuple[bool, str]:
                outcome["answer"], outcome["citations"] = check_answer(local)
                return outcome["answer"]

            checks.append(_check("answer", answer, info))
            citations = outcome.get("citations", (False, "no answer"))
            checks.append({"name": "answer-citations", "passed": citations[0],
                           "required": "answer-citations" not in info, "detail": citations[1], "seconds": 0.0})
        else:
            for name in ("search", "answer", "answer-citations"):
                checks.append({"name": name, "passed": False, "required": name not in info,
                               "detail": "skipped: the known document could not be indexed", "seconds": 0.0})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return checks


def stack_ok(checks: list[dict]) -> bool:
    return all(c["passed"] for c in checks if c["required"])


@flow(name="verify-stack")
def verify_stack(informational: list[str] | None = None) -> list[dict]:
    """Run every check against the configured stack and publish a pass/fail table artifact."""
    settings = get_settings()
    checks = run_checks(settings, informational or ())
    logger = get_run_logger()
    for c in checks:
        level = logger.info if c["passed"] or not c["required"] else logger.error
        level("%s: %s (%s) %.2f s", c["name"], "pass" if c["passed"] else "FAIL", c["detail"], c["seconds"])
    backends = f"ocr={settings.ocr_backend}, embeddings={settings.embed_backend}, answers={settings.llm_backend}"
    create_table_artifact(
        key="verify-stack",
        table=[{**c, "passed": "pass" if c["passed"] else "FAIL", "required": "yes" if c["required"] else "info"}
               for c in checks],
        description=f"verify-stack ({backends}): {'all required checks pass' if stack_ok(checks) else 'FAILED'}",
    )
    return checks
