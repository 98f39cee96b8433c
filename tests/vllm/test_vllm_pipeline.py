"""The whole pipeline (Prefect flows, LanceDB, CLI) against real vLLM servers (CPU build, tiny random-weight models).

What is checked is plumbing under real conditions: batching as the server counts it, model bookkeeping, a server
killed mid-ingest, a server that stays down, a dimension switch, and that the API key leaks into no output channel.
The tiny models' outputs are noise, so no test judges answer quality.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docintel import progress
from docintel.settings import Settings
from models import backends, launcher
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.vllm

DOC_A = "ca2_1-1.pdf"  # Second Circuit docketing notice, 2 pages, text layer
DOC_B = "gov.uscourts.cacd.652774.40.0.pdf"  # C.D. Cal. preliminary injunction order, 4 pages, text layer
SCAN = "scanned-ca8-letter.pdf"  # 2 image-only pages: OCR'd by Tesseract
QUESTION = "Who filed the notice of appeal docketed by the Second Circuit?"
BATCH = 8


@pytest.fixture(autouse=True)
def fresh_embedder():
    """models.backends caches one embedder per (backend, threads, URL): not per key or model name."""
    backends._cached_embedder.cache_clear()
    yield
    backends._cached_embedder.cache_clear()


def use_vllm(settings_env, embed_server, chat_server, **extra) -> Settings:
    """Settings for the vllm embeddings + reasoning backends on the tiny servers. Small passages and k=1 keep an
    answer prompt inside the tiny chat model's 512-token context."""
    values = dict(
        embed_backend="vllm", llm_backend="vllm", ocr_backend="tesseract",
        vllm_embed_url=embed_server.api_url, vllm_embed_model=embed_server.model,
        vllm_llm_url=chat_server.api_url, vllm_llm_model=chat_server.model,
        chunk_target_chars=250, chunk_overlap_chars=50, embed_batch_size=BATCH, search_k=1,
    )
    if embed_server.api_key:
        values["vllm_api_key"] = embed_server.api_key  # the chat server has no key and ignores it
    values.update(extra)
    backends._cached_embedder.cache_clear()
    return settings_env(**values)


def ingest(*paths: Path, retry_failed: bool = False) -> dict:
    from flows.ingest import ingest_documents

    return ingest_documents([str(p) for p in paths], retry_failed=retry_failed)


def _think_end_id() -> int:
    from tokenizers import Tokenizer

    from models import services as reg

    return Tokenizer.from_file(str(reg.tiny_models_dir() / "chat" / "tokenizer.json")).token_to_id("</think>")


# ------------------------------------------------------------------------------------------- a. a real ingest

def test_ingest_batches_records_the_model_and_answers_with_reasoning_apart(settings_env, sample, embed_server,
                                                                           chat_server, vllm_report):
    from models.vllm_clients import VllmReasoner
    from tasks.answer import answer_question
    from tasks.store import CHUNKS, open_store

    settings = use_vllm(settings_env, embed_server, chat_server)
    before = embed_server.http_requests("/v1/embeddings")
    summary = ingest(sample(DOC_A), sample(DOC_B))
    after = embed_server.http_requests("/v1/embeddings")
    assert summary["failures"] == [] and summary["documents_new"] == 2, summary
    chunks = summary["chunks_written"]
    assert chunks > BATCH  # more than one batch, or batching proves nothing
    requests = after - before
    # + the dimension probe and the flow's warm-up request (the two may race: 3 at most); a batch may be cut short
    # once per document (sent while the server had room, rather than waiting for more passages)
    vllm_report(f"ingest of 2 PDFs: {chunks} passages in {requests:.0f} embedding requests (batch {BATCH})")
    assert math.ceil(chunks / BATCH) <= requests <= chunks // BATCH + 2 + 3, (requests, chunks)

    store = open_store(settings.db_uri)
    assert store.recorded_embedding() == (embed_server.model, 128)
    docs = store.documents()
    assert len(docs) == 2 and all(d["status"] == "complete" and d["embedding_model"] == embed_server.model
                                  for d in docs)
    assert {r["embedding_model"] for r in store.rows(CHUNKS, columns=["embedding_model"])} == {embed_server.model}

    # The reasoning model: sampling with a bias towards </think> (seeded) so the random model "thinks", closes its
    # thought and "answers"; some seeds answer nothing, so try a few.
    answer = None
    for seed in range(12):
        reasoner = VllmReasoner.from_settings(settings, max_tokens=32, temperature=1.0, timeout=60,
                                              extra_body={"seed": seed, "logit_bias": {str(_think_end_id()): 6}})
        answer = answer_question(QUESTION, k=1, settings=settings, backend=reasoner)
        assert answer.relevant or answer.reasoning or seed < 11
        if answer.reasoning and answer.relevant:
            break
    assert answer is not None and answer.backend == "vllm-reasoner"
    assert answer.reasoning and answer.answer
    assert answer.reasoning not in answer.answer and "<think>" not in answer.answer
    assert not answer.extractive


def _write_texts(folder: Path, texts: dict[str, str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text)
    return [folder / name for name in texts]


def test_batches_are_formed_across_documents(settings_env, embed_server, chat_server, vllm_report):
    """The embedding stage in a flow with a real task runner and server: eleven one-passage documents that are ready
    together go out in four requests (two alone while the server is free, then batches across documents), not
    eleven. In a full ingest, how many are ready together depends on timing; here they are all added at once."""
    from prefect import flow
    from prefect.task_runners import ThreadPoolTaskRunner

    from docintel.records import Chunk
    from tasks.embed import EmbeddingStage

    use_vllm(settings_env, embed_server, chat_server)
    assert backends.embedder().dimension == 128  # the dimension probe, out of the count
    passages = [Chunk(f"c{n}", f"memo-{n}", f"memo-{n}.txt", 1, 0, 80, 0, 80,
                      f"Memorandum {n}. The parties agree that clause {n} of the lease survives termination.")
                for n in range(11)]  # fmt: skip

    @flow
    def embed_memos() -> list:
        events: queue.Queue = queue.Queue()
        with ThreadPoolTaskRunner(max_workers=2) as runner:
            stage = EmbeddingStage(runner, events, BATCH, in_flight=2)
            for chunk in passages:
                stage.add(chunk.document_id, [chunk])
            done = []
            while len(done) < len(passages):
                done += events.get()[1].embedded
        return done

    before = embed_server.http_requests("/v1/embeddings")
    done = embed_memos()
    requests = embed_server.http_requests("/v1/embeddings") - before
    vllm_report(f"11 one-passage documents embedded in {requests:.0f} requests (batch {BATCH}, 2 in flight)")
    assert sorted(done) == sorted(chunk.document_id for chunk in passages)
    assert all(chunk.vector is not None and len(chunk.vector) == 128 for chunk in passages)
    assert requests == 2 + math.ceil(9 / BATCH), requests


def test_a_passage_the_server_rejects_fails_its_document_alone(settings_env, embed_server, chat_server, tmp_path):
    """A real 400 from vLLM (a passage longer than the model's 512 tokens) in a batch shared with another document:
    the batch is split, the other document is stored, only the offending one fails, with the server's reason."""
    use_vllm(settings_env, embed_server, chat_server, embed_in_flight=1, chunk_target_chars=6000)
    paths = _write_texts(tmp_path / "mixed", {
        "a-short.txt": "The lessee shall maintain insurance on the premises.",
        "b-endless.txt": " ".join(f"W{n}x{n * 7919 % 10007}" for n in range(700)),  # one passage, far over 512 tokens
        "c-short.txt": "The lessor shall repair the roof within thirty days of notice.",
    })  # fmt: skip
    summary = ingest(*paths)
    assert summary["documents_new"] == 2 and summary["documents_failed"] == 1, summary
    (failure,) = summary["failures"]
    assert failure["path"].endswith("b-endless.txt") and "400" in failure["reason"], failure
    assert {doc["path"].rsplit("/", 1)[-1] for doc in summary["documents"] if doc["status"] == "ingested"} == {
        "a-short.txt", "c-short.txt"}


# --------------------------------------------------------------------------- b. killed mid-ingest, restarted

class _KillWhenTheScanIsBeingRead:
    """A progress listener (the CLI's bar uses the same hook) that SIGKILLs the server's process group when the first
    OCR'd page of the scan comes back: the scan's passages cannot have been embedded yet (they go out only once all
    its pages are in), so its embedding requests meet a dead server."""

    def __init__(self, server, scan_name: str):
        self.server = server
        self.scan_name = scan_name
        self.killed_pid: int | None = None
        self.killed_at = 0.0

    def add_work(self, documents: int, pages: int) -> None: ...

    def page_done(self, source_path: str, page_number: int) -> None:
        if self.killed_pid is None and source_path.endswith(self.scan_name):
            self.killed_pid = self.server.server_pid()
            os.killpg(self.killed_pid, signal.SIGKILL)
            self.killed_at = time.monotonic()

    def document_done(self, source_path: str, status: str) -> None: ...


def test_server_killed_mid_ingest_is_restarted_and_the_ingest_completes(settings_env, sample, own_embed_server,
                                                                        chat_server, vllm_report):
    from tasks.store import open_store

    # The supervisor restarts the server in 1-2 min on a busy CPU; full-jitter backoff capped at 20 s per wait.
    settings = use_vllm(settings_env, own_embed_server, chat_server, vllm_max_retries=60)
    killer = _KillWhenTheScanIsBeingRead(own_embed_server, SCAN)
    progress.set_listener(killer)
    try:
        t0 = time.monotonic()
        summary = ingest(sample(DOC_A), sample(SCAN))
        took = time.monotonic() - t0
    finally:
        progress.set_listener(None)
    assert killer.killed_pid is not None
    assert summary["failures"] == [] and summary["documents_new"] == 2, summary
    docs = open_store(settings.db_uri).documents()
    assert len(docs) == 2 and all(d["status"] == "complete" and d["chunk_count"] > 0 for d in docs)
    client = backends.embedder()
    assert client.retries > 0  # the scan's requests met the dead server
    assert own_embed_server.server_pid() != killer.killed_pid
    (st,) = launcher.status(state=own_embed_server.state_dir, settings=Settings(vllm_api_key=None))
    assert st.restarts == 1 and st.ready
    vllm_report(f"embeddings server SIGKILLed mid-ingest; ingest completed after {took:.0f} s with "
                f"{client.retries} client retries")


# ---------------------------------------------------------------------------------- c. a server that stays down

def test_server_that_stays_down_is_a_clear_recorded_failure(settings_env, sample, embed_server, chat_server,
                                                            unused_port):
    from tasks.store import CHUNKS, open_store

    url = f"http://127.0.0.1:{unused_port}/v1"
    settings = use_vllm(settings_env, embed_server, chat_server, vllm_embed_url=url, vllm_max_retries=1)
    path = sample(DOC_A)
    summary = ingest(path)
    assert summary["documents_new"] == 0 and summary["documents_failed"] == 1
    (failure,) = summary["failures"]
    reason = failure["reason"]
    assert url in reason and "connection failed" in reason and "after 2 attempts" in reason, reason
    assert "Traceback" not in reason and "File \"" not in reason

    store = open_store(settings.db_uri)
    (row,) = store.failures()
    assert row["source_path"] == str(path) and row["retry_pending"] is True and row["stage"] == "index"
    assert row["reason"] == reason
    document_id = row["document_id"]
    doc = store.document(document_id)
    assert doc is None or doc["status"] != "complete"
    assert store.count(CHUNKS, f"document_id = '{document_id}'") == 0


# ------------------------------------------------------------------------------------ d. dimension mismatch

def test_dimension_mismatch_names_the_database_model_and_reembed_switches(settings_env, sample, embed_server,
                                                                          chat_server):
    from flows.reembed import reembed_documents
    from tasks.search import search
    from tasks.store import open_store

    local = settings_env(embed_backend="local", chunk_target_chars=300, chunk_overlap_chars=50)
    first = ingest(sample(DOC_A))
    assert first["failures"] == [] and first["documents_new"] == 1
    store = open_store(local.db_uri)
    assert store.recorded_embedding() == ("all-MiniLM-L6-v2", 384)

    settings = use_vllm(settings_env, embed_server, chat_server)
    second = ingest(sample(DOC_B))
    (failure,) = second["failures"]
    assert "holds 384-dim vectors from 'all-MiniLM-L6-v2'" in failure["reason"], failure
    assert "`docintel reembed`" in failure["reason"] and embed_server.model in failure["reason"]
    assert "(128-dim)" in failure["reason"]

    result = reembed_documents()
    assert result["model"] == embed_server.model and result["dimension"] == 128
    assert result["previous"] == ("all-MiniLM-L6-v2", 384) and result["chunks"] == first["chunks_written"]
    assert store.recorded_embedding() == (embed_server.model, 128)
    hits = search("notice of appeal docketed", settings=settings)
    assert hits and all(h.source.endswith(DOC_A) for h in hits)
    # the document refused before now goes in
    third = ingest(sample(DOC_B), retry_failed=True)  # a recorded failure is retried on request only
    assert third["failures"] == [] and third["documents_new"] == 1


# ------------------------------------------------------------------------------------------------- e. secrets

def _prefect_text() -> str:
    """Every flow/task log line and artifact the session's Prefect API holds, as one text."""
    from prefect import get_client
    from prefect.client.schemas.sorting import LogSort

    parts = []
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            logs = client.read_logs(limit=200, offset=offset, sort=LogSort.TIMESTAMP_ASC)
            parts += [f"{log.name} {log.message}" for log in logs]
            if len(logs) < 200:
                break
            offset += 200
        artifacts = client.read_artifacts(limit=200)
        parts += [json.dumps(a.model_dump(mode="json"), default=str) for a in artifacts]
        parts += [json.dumps(fr.model_dump(mode="json"), default=str) for fr in client.read_flow_runs(limit=200)]
    assert any("ingest" in p for p in parts)  # we read the right API
    return "\n".join(parts)


def test_api_key_appears_in_no_output_channel(settings_env, sample, embed_server, chat_server, vllm_servers,
                                              tmp_path):
    from prefect.settings import PREFECT_API_URL

    from tasks.store import CHUNKS, CITATIONS, DOCUMENTS, FAILURES, PAGES, open_store

    key = vllm_servers["key"]
    wrong = "sk-docintel-test-SECRET-" + key[-8:][::-1]
    settings = use_vllm(settings_env, embed_server, chat_server)
    ok = ingest(sample(DOC_A))
    assert ok["failures"] == [] and ok["documents_new"] == 1

    # docintel ask --json in a child process, configured by environment only, like an operator's shell
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    ask = subprocess.run([str(Path(sys.executable).parent / "docintel"), "ask", "--json", "--k", "1", QUESTION], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    if ask.returncode != 0 and "No such command" in ask.stderr + ask.stdout:  # pragma: no cover
        pytest.fail(ask.stderr)
    assert ask.returncode == 0, ask.stderr[-3000:]
    answer = json.loads(ask.stdout)
    assert answer["backend"] == "vllm-reasoner"

    # the wrong key: a recorded 401, the key named nowhere
    use_vllm(settings_env, embed_server, chat_server, vllm_api_key=wrong, db_uri=tmp_path / "wrong-db")
    bad = ingest(sample(DOC_B))
    (failure,) = bad["failures"]
    assert "HTTP 401" in failure["reason"] and embed_server.api_url in failure["reason"], failure
    bad_store = open_store(str(tmp_path / "wrong-db"))
    assert bad_store.failures()[0]["retry_pending"] is True

    channels = {"ask stdout": ask.stdout, "ask stderr": ask.stderr, "ingest summaries": json.dumps([ok, bad])}
    for name, store in (("db", open_store(settings.db_uri)), ("wrong db", bad_store)):
        for table in (DOCUMENTS, PAGES, CHUNKS, CITATIONS, FAILURES):
            channels[f"{name} {table}"] = json.dumps(store.rows(table), default=str)
    channels["prefect logs, artifacts, runs"] = _prefect_text()
    for f in Path(vllm_servers["state"]).iterdir():
        channels[f"launcher {f.name}"] = f.read_text(errors="replace")
    assert len(channels) > 10
    for name, text in channels.items():
        for secret in (key, wrong):
            assert secret not in text, f"the API key appears in {name}"


# ------------------------------------------------------------------------------------------ verify_stack flow

def test_verify_stack_against_the_tiny_servers(settings_env, embed_server, chat_server, vllm_report):
    """Embeddings and reasoning by vLLM, OCR by Tesseract. A random-weight encoder cannot rank by meaning, so the
    ranking of related over unrelated passages is informational here (reported, not required); everything else
    (OCR quality, vector plumbing, search ranking, a reasoned answer) must pass."""
    from prefect import get_client

    from flows.verify import verify_stack

    use_vllm(settings_env, embed_server, chat_server)
    checks = verify_stack(informational=["embedding-ranking", "answer-citations"])
    by_name = {c["name"]: c for c in checks}
    vllm_report("verify-stack: " + ", ".join(
        f"{c['name']}={'pass' if c['passed'] else 'FAIL'}{'' if c['required'] else ' (info)'}" for c in checks))
    assert {"ocr", "embeddings", "embedding-ranking", "search", "answer", "answer-citations"} <= set(by_name)
    for c in checks:
        assert set(c) >= {"name", "passed", "detail", "seconds", "required"}
        if c["required"]:
            assert c["passed"], c
    assert not by_name["embedding-ranking"]["required"]
    assert embed_server.model in by_name["embeddings"]["detail"]
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts(limit=200)}
    assert "verify-stack" in keys
