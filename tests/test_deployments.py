"""Deployments on two nodes, proven on a real Prefect server: no mocks.

``test_two_nodes_...`` starts ``prefect server start`` on loopback with its own PREFECT_HOME, deploys everything in
prefect.yaml through scripts/deploy.sh, starts one process worker per node pool (spark-1, spark-2: different
environments, one shared LanceDB folder) and runs the ``ingest-batch`` deployment over an inbox of real court filings,
text files, a damaged PDF, a duplicate and a symbolic link out of the inbox. A second batch loses a node in the middle
(its worker and flow-run processes are SIGKILLed); the worker is restarted and the batch finishes every document,
each exactly once. Server and workers are stopped by PID when the test ends, also when it fails.

``test_concurrent_writers_...`` proves the database side on its own: processes writing the same and different
documents into one LanceDB at once lose nothing and duplicate nothing.

Run: ``.venv/bin/python -m pytest tests/test_deployments.py -q`` (about 4-6 minutes on 2 busy cores).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paths import CORPUS, REPO
from prefect_server import PrefectStack

NODES = ("spark-1", "spark-2")
CRON = "30 3 1 1 *"  # configurable; far from the test's run time so the schedule never fires during it
BATCH_1_PDFS = [  # text-layer filings (cheap: no OCR) plus one scan-like filing with a thin text layer (OCR'd)
    "ca10_010110462922.pdf", "ca2_1-1.pdf", "ca3_003112692106.pdf", "ca6_1-3.pdf", "ca7_3.pdf", "ca8_.pdf",
    "cafc_3.pdf", "gov.uscourts.cacd.652774.40.0.pdf", "ca5_00516242060.pdf",
]  # fmt: skip
BATCH_2_PDFS = ["ca1_00117684624.pdf", "ca9_19.pdf", "gov.uscourts.cand.203070.27.0.pdf"]
TEXTS = {
    "memo-roe.txt": "Memorandum. The court relied on Roe v. Wade, 410 U.S. 113 (1973), and on 42 U.S.C. § 1983.\n" * 12,
    "letter-miranda.txt": "Counsel cited Miranda v. Arizona, 384 U.S. 436 (1966), at the suppression hearing.\n" * 10,
    "notes-brown.txt": "See Brown v. Board of Education, 347 U.S. 483 (1954). Id. at 495.\n" * 15,
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- the database under concurrent writers --------------------------------------------------------------------
WRITER = r"""
import logging, sys, time
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
from docintel.records import Chunk, PageMethod, PageText
from tasks.store import open_store
uri, node, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
store = open_store(uri)
def document(doc_id):
    pages = [PageText(doc_id, n, f"page {n} of {doc_id} " * 20, PageMethod.TEXT_LAYER) for n in (1, 2, 3)]
    chunks = [Chunk(f"{doc_id}:{n}:{i}", doc_id, f"/inbox/{doc_id}.pdf", n, 0, 10, 0, 10, f"chunk {i} of page {n} in {doc_id}",
                    [], [float(n), float(i), 1.0, 0.5]) for n in (1, 2, 3) for i in range(4)]
    row = {"document_id": doc_id, "source_path": f"/inbox/{doc_id}.pdf", "file_name": f"{doc_id}.pdf", "kind": "pdf",
           "size_bytes": 1, "page_count": 3, "chunk_count": len(chunks), "citation_count": 0, "failed_pages": 0,
           "node": node, "note": ""}
    return row, pages, chunks
while time.time() < start:
    time.sleep(0.005)
# every writer writes the shared documents (two nodes ingesting the same file) and its own ones
for doc_id in [f"shared-{i}" for i in range(6)] + [f"{node}-{i}" for i in range(4)]:
    row, pages, chunks = document(doc_id)
    store.check_embedding("test-4d", 4)
    store.write_document(row, pages, chunks, [], "test-4d")
    store.record_embedding("test-4d", 4)
store.refresh_indexes()
print("ok", node)
"""


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(tmp_path):
    uri = str(tmp_path / "lancedb")
    writers = [f"node-{n}" for n in range(4)]
    start = time.time() + 8  # all interpreters are up before anyone writes
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, uri, node, str(start)], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for node in writers
    ]  # fmt: skip
    outputs = [process.communicate(timeout=240) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]

    from tasks.store import CHUNKS, DOCUMENTS, META, PAGES, Store

    store = Store(uri)
    expected_documents = {f"shared-{i}" for i in range(6)} | {f"{n}-{i}" for n in writers for i in range(4)}
    documents = store.rows(DOCUMENTS, columns=["document_id", "status"])
    assert sorted(row["document_id"] for row in documents) == sorted(expected_documents)  # once each
    assert {row["status"] for row in documents} == {"complete"}
    chunk_ids = [row["chunk_id"] for row in store.rows(CHUNKS, columns=["chunk_id"])]
    assert len(chunk_ids) == len(set(chunk_ids)) == 12 * len(expected_documents)
    page_ids = [row["page_id"] for row in store.rows(PAGES, columns=["page_id"])]
    assert len(page_ids) == len(set(page_ids)) == 3 * len(expected_documents)
    keys = [row["key"] for row in store.rows(META)]
    assert sorted(keys) == ["embedding_dim", "embedding_model"]


# ---- two nodes on a real Prefect server --------------------------------------------------------------------------
def _fill_inbox(inbox: Path, pdfs: list[str], texts: dict[str, str]) -> list[Path]:
    inbox.mkdir(parents=True, exist_ok=True)
    good = []
    for name in pdfs:
        shutil.copyfile(CORPUS / "court" / name, inbox / name)
        good.append(inbox / name)
    for name, text in texts.items():
        (inbox / name).write_text(text)
        good.append(inbox / name)
    return good


def _wait_final(client, run_id, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if run.state and run.state.is_final():
            return run
        time.sleep(1)
    raise AssertionError(f"flow run {run_id} not finished after {timeout} s (state {run.state_name})")


def _summary(client, run_id) -> list[dict]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["ingest-batch-summary"]), flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])
        )
    )
    assert len(artifacts) == 1, f"expected one summary artifact for run {run_id}, found {len(artifacts)}"
    assert artifacts[0].type == "table"
    data = artifacts[0].data
    return json.loads(data) if isinstance(data, str) else data


def _children(client, batch_name: str) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    return client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=f"{batch_name}-spark-")))


def _assert_exactly_once(db_uri: str, good: list[Path]) -> dict[str, dict]:
    from tasks.store import CHUNKS, DOCUMENTS, PAGES, Store

    store = Store(db_uri)
    documents = store.rows(DOCUMENTS)
    ids = [row["document_id"] for row in documents]
    assert len(ids) == len(set(ids)), "a document row was written twice"
    by_id = {row["document_id"]: row for row in documents}
    for path in good:
        row = by_id.get(sha256(path))
        assert row is not None, f"{path.name} did not land"
        assert row["status"] == "complete", f"{path.name}: {row['status']}"
        assert row["source_path"] == str(path.resolve())
    assert set(by_id) == {sha256(path) for path in good}, "rows for files that are not good inbox documents"
    chunks = store.rows(CHUNKS, columns=["chunk_id", "document_id"])
    chunk_ids = [row["chunk_id"] for row in chunks]
    assert len(chunk_ids) == len(set(chunk_ids)), "duplicate chunks"
    for document_id, row in by_id.items():  # nothing lost either: every chunk the document counted is there
        assert sum(c["document_id"] == document_id for c in chunks) == row["chunk_count"], row["file_name"]
        assert row["chunk_count"] > 0, row["file_name"]
    page_ids = [row["page_id"] for row in store.rows(PAGES, columns=["page_id"])]
    assert len(page_ids) == len(set(page_ids)), "duplicate pages"
    return by_id


@pytest.mark.prefect_server
def test_two_nodes_ingest_a_batch_exactly_once_and_survive_a_node_crash(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    started = time.monotonic()
    timings: dict[str, float] = {}
    inbox = tmp_path / "inbox"
    db_uri = str(tmp_path / "lancedb")
    good = _fill_inbox(inbox, BATCH_1_PDFS, dict(list(TEXTS.items())[:2]))
    shutil.copyfile(CORPUS / "broken" / "qpdf-bad1.pdf", inbox / "damaged.pdf")
    shutil.copyfile(inbox / "ca7_3.pdf", inbox / "zz-copy-of-ca7_3.pdf")  # same bytes: ingested once
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(CORPUS / "court" / "ca9_19.pdf", outside / "secret.pdf")
    os.symlink(outside / "secret.pdf", inbox / "link-out.pdf")
    os.symlink(outside, inbox / "dir-out")

    node_env = {  # what each node's worker environment holds (deployments/systemd/prefect-worker@.service)
        "DOCINTEL_DB_URI": db_uri, "DOCINTEL_OCR_WORKERS": "1", "OMP_THREAD_LIMIT": "1", "DOCINTEL_EMBED_THREADS": "1",
    }  # fmt: skip
    stack = PrefectStack(tmp_path / "prefect", node_env)
    try:
        stack.start_server()
        timings["server_healthy_s"] = round(time.monotonic() - started, 1)
        print(f"server healthy after {timings['server_healthy_s']} s", flush=True)
        workers = {node: stack.start_worker(f"{node}-gpu0", {"DOCINTEL_NODE_NAME": node}) for node in NODES}
        deploy_started = time.monotonic()
        out = stack.run(
            ["bash", "scripts/deploy.sh"],
            env={"DOCINTEL_INBOX": str(inbox), "DOCINTEL_INGEST_CRON": CRON, "DOCINTEL_INGEST_TIMEZONE": "UTC",
                 "DOCINTEL_REPO_DIR": str(REPO)},
        )  # fmt: skip
        timings["deploy_s"] = round(time.monotonic() - deploy_started, 1)
        print(f"deployed in {timings['deploy_s']} s", flush=True)
        assert "pool spark-1-gpu0" in out and "limit vllm-embed-spark-2" in out

        with temporary_settings(updates={PREFECT_API_URL: stack.api_url}), get_client(sync_client=True) as client:
            # -- what was deployed
            scheduled = client.read_deployment_by_name("ingest-batch/scheduled")
            assert [s.schedule.cron for s in scheduled.schedules] == [CRON]
            assert scheduled.parameters["inbox"] == str(inbox)
            for node in NODES:
                deployment = client.read_deployment_by_name(f"ingest-documents/{node}")
                assert deployment.work_pool_name == f"{node}-gpu0"
                env = deployment.job_variables["env"]
                assert env["DOCINTEL_NODE_NAME"] == node and env["CUDA_VISIBLE_DEVICES"] == "0"
                assert env["DOCINTEL_DB_URI"] == db_uri and env["DOCINTEL_VLLM_EMBED_URL"].startswith(f"http://{node}:")
            for name in ("search-documents/default", "answer-question/default"):
                schema = client.read_deployment_by_name(name).parameter_openapi_schema
                assert schema["properties"], name
            limits = {limit.name for limit in client.read_global_concurrency_limits(limit=100)}
            assert {f"vllm-{s}-{n}" for s in ("ocr", "embed", "llm") for n in NODES} <= limits

            # -- batch 1: ten good documents, a damaged one, a duplicate, links out of the inbox
            batch_1 = run_deployment(
                "ingest-batch/scheduled", parameters={"inbox": str(inbox), "poll_seconds": 1.0},
                timeout=0, as_subflow=False,
            )  # fmt: skip
            batch_1 = _wait_final(client, batch_1.id, timeout=240)
            assert batch_1.state_type == StateType.COMPLETED, batch_1.state.message
            timings["batch_1_s"] = round((batch_1.end_time - batch_1.expected_start_time).total_seconds(), 1)
            print(f"batch 1 took {timings['batch_1_s']} s", flush=True)
            by_id = _assert_exactly_once(db_uri, good)
            assert {row["node"] for row in by_id.values()} == set(NODES), "both nodes must do part of the work"
            rows = {Path(row["path"]).name: row for row in _summary(client, batch_1.id)}
            for path in good:
                assert rows[path.name]["status"] == "ingested", rows[path.name]
                assert rows[path.name]["node"] in NODES and rows[path.name]["chunks"] > 0
            assert rows["damaged.pdf"]["status"] == "failed" and rows["damaged.pdf"]["failures"], rows["damaged.pdf"]
            assert rows["zz-copy-of-ca7_3.pdf"]["status"] == f"duplicate of {inbox / 'ca7_3.pdf'}"
            assert rows["link-out.pdf"]["status"].startswith("refused: symbolic link"), rows["link-out.pdf"]
            assert rows["dir-out"]["status"].startswith("refused: symbolic link"), rows["dir-out"]
            assert "secret.pdf" not in rows
            children_1 = _children(client, batch_1.name)
            assert sorted(c.state_type for c in children_1) == [StateType.COMPLETED] * 2
            assert all(c.parent_task_run_id for c in children_1), "node runs are subflow runs of the batch"
            starts = [(c.start_time - c.expected_start_time).total_seconds() for c in [batch_1, *children_1]]

            # -- batch 2: new files; spark-2 dies in the middle, comes back, the batch still finishes everything
            good_2 = _fill_inbox(inbox, BATCH_2_PDFS, dict(list(TEXTS.items())[2:]))
            batch_2 = run_deployment(
                "ingest-batch/scheduled", parameters={"inbox": str(inbox), "poll_seconds": 1.0},
                timeout=0, as_subflow=False,
            )  # fmt: skip
            victim = None
            deadline = time.monotonic() + 180
            while victim is None and time.monotonic() < deadline:
                running = [c for c in _children(client, batch_2.name)
                           if c.name.endswith("-spark-2-r1") and c.state_type == StateType.RUNNING]  # fmt: skip
                if running:
                    victim = running[0]
                time.sleep(0.5)
            assert victim is not None, "spark-2's run of batch 2 never started"
            new_ids = {sha256(p) for p in good_2}
            from tasks.store import DOCUMENTS, Store

            wait_until = time.monotonic() + 60  # let it write something first, then pull the plug
            while time.monotonic() < wait_until:
                rows_2 = [r for r in Store(db_uri).rows(DOCUMENTS) if r["document_id"] in new_ids]
                if any(r["node"] == "spark-2" for r in rows_2):
                    break
                time.sleep(0.3)
            stack.crash(workers["spark-2"])
            killed_at = time.monotonic()
            assert not client.read_flow_run(victim.id).state.is_final(), "spark-2 finished before the crash"
            time.sleep(2)
            workers["spark-2"] = stack.start_worker("spark-2-gpu0", {"DOCINTEL_NODE_NAME": "spark-2"})

            batch_2 = _wait_final(client, batch_2.id, timeout=300)
            assert batch_2.state_type == StateType.COMPLETED, batch_2.state.message
            timings["batch_2_after_crash_s"] = round(time.monotonic() - killed_at, 1)
            assert client.read_flow_run(victim.id).state_type == StateType.CRASHED
            by_id = _assert_exactly_once(db_uri, good + good_2)
            rows = {Path(row["path"]).name: row for row in _summary(client, batch_2.id)}
            for path in good_2:
                assert rows[path.name]["status"] == "ingested", rows[path.name]
            for path in good:
                assert rows[path.name]["status"] == "unchanged", rows[path.name]
            children_2 = _children(client, batch_2.name)
            rounds = sorted(c.name.rsplit("-", 1)[1] for c in children_2)
            if any(rows[p.name]["round"] == 2 for p in good_2):
                assert "r2" in rounds
            starts += [(c.start_time - c.expected_start_time).total_seconds() for c in [batch_2, *children_2]
                       if c.start_time]  # fmt: skip
    except BaseException:
        print(stack.logs_tail(40))
        raise
    finally:
        stack.stop_all()
    timings["start_latency_s"] = {"min": round(min(starts), 1), "max": round(max(starts), 1),
                                  "mean": round(sum(starts) / len(starts), 1), "runs": len(starts)}  # fmt: skip
    timings["total_s"] = round(time.monotonic() - started, 1)
    print("timings", json.dumps(timings))
    (REPO / ".pytest_cache").mkdir(exist_ok=True)
    (REPO / ".pytest_cache" / "deployments-timings.json").write_text(json.dumps(timings, indent=2))
