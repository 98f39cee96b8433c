"""Faults caused for real: an ingest killed with SIGKILL mid-run, and two ingests racing on overlapping inputs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from paths import REPO, SAMPLES
from flows.ingest import ingest_documents
from tasks.search import search
from tasks.store import CHUNKS, CITATIONS, DOCUMENTS, PAGES, STATUS_COMPLETE, open_store

KEYS = {DOCUMENTS: "document_id", PAGES: "page_id", CHUNKS: "chunk_id", CITATIONS: "citation_id"}


def _cli(*args: str, db: Path) -> subprocess.Popen:
    env = {**os.environ, "DOCINTEL_DB_URI": str(db)}
    return subprocess.Popen(
        [sys.executable, "-m", "docintel", *args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def _contents(db: Path) -> dict[str, list[str]]:
    """Every table's ids (sorted, duplicates kept) and the documents' statuses."""
    store = open_store(str(db))
    tables = {name: sorted(row[key] for row in store.rows(name, columns=[key])) for name, key in KEYS.items()}
    tables["status"] = sorted(row["status"] for row in store.rows(DOCUMENTS, columns=["status"]))
    return tables


def _inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLES, inbox)
    return inbox


def test_kill_9_mid_ingest_then_rerun_equals_an_uninterrupted_run(settings_env, tmp_path):
    inbox = _inbox(tmp_path)
    reference_db = tmp_path / "reference"
    settings_env(db_uri=reference_db)
    ingest_documents([str(inbox)])
    reference = _contents(reference_db)

    crashed_db = tmp_path / "crashed"
    process = _cli("ingest", str(inbox), "--json", db=crashed_db)
    deadline = time.monotonic() + 600
    complete = 0
    while time.monotonic() < deadline and process.poll() is None:
        if (crashed_db / f"{DOCUMENTS}.lance").exists():
            complete = open_store(str(crashed_db)).count(DOCUMENTS, f"status = '{STATUS_COMPLETE}'")
            if complete >= 1:
                break
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert 1 <= complete < len(reference[DOCUMENTS]), "the kill must land in the middle of the batch"

    # Before the re-run, search sees only whole documents.
    settings_env(db_uri=crashed_db)
    whole = {row["document_id"] for row in open_store(str(crashed_db)).documents() if row["status"] == STATUS_COMPLETE}
    hits = search("court of appeals order", k=50)
    assert hits and {hit.document_id for hit in hits} <= whole

    rerun = _cli("ingest", str(inbox), "--json", db=crashed_db)
    _, stderr = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, stderr.decode()[-2000:]
    assert _contents(crashed_db) == reference


def test_two_ingests_of_overlapping_inputs_at_once_lose_nothing_and_duplicate_nothing(tmp_path):
    inbox = _inbox(tmp_path)
    names = sorted(path.name for path in inbox.glob("*.pdf"))
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for name in names[:4]:
        shutil.copyfile(inbox / name, first / name)
    for name in names[2:]:
        shutil.copyfile(inbox / name, second / name)
    db = tmp_path / "shared-db"

    runs = [_cli("ingest", str(folder), "--json", db=db) for folder in (first, second)]
    for run in runs:
        _, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, stderr.decode()[-2000:]

    contents = _contents(db)
    assert len(contents[DOCUMENTS]) == len(names)
    for table, ids in contents.items():
        if table != "status":
            duplicates = [key for key, count in Counter(ids).items() if count > 1]
            assert not duplicates, f"{table} has duplicate rows: {duplicates[:3]}"
    assert set(contents["status"]) == {STATUS_COMPLETE}


def test_a_failed_page_is_recorded_and_only_retried_on_request(settings_env, tmp_path):
    from data.make_scanned_sample import make_scan
    from paths import CORPUS

    scan = tmp_path / "scan.pdf"
    make_scan(CORPUS / "court" / "ca6_1-3.pdf", scan)
    # A per-page OCR limit no page can meet: Tesseract is really started and really stopped by the timeout.
    settings = settings_env(ocr_timeout_seconds=0.001)
    first = ingest_documents([str(scan)])
    assert first["documents_new"] == 1
    assert {f["page"] for f in first["failures"]} == {1, 2, 3}
    assert all("timeout" in f["reason"].lower() for f in first["failures"])
    store = open_store(settings.db_uri)
    assert all(row["retry_pending"] for row in store.failures())

    settings_env(ocr_timeout_seconds=120)
    again = ingest_documents([str(scan)])
    assert again["documents_unchanged"] == 1 and again["ocr_pages"] == 0  # no retry unless asked

    retried = ingest_documents([str(scan)], retry_failed=True)
    assert retried["documents_new"] == 1 and retried["ocr_pages"] == 3 and not retried["failures"]
    assert store.failures() == []
    assert store.documents()[0]["failed_pages"] == 0
