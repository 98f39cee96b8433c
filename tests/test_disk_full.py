"""A database that runs out of space mid-ingest, caused for real with a small tmpfs: the document is reported failed,
nothing of it is searchable, and it ingests once space is back."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from flows.ingest import ingest_documents
from tasks.search import search
from tasks.store import STATUS_COMPLETE, open_store


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root (CI and the dev machines run as root)")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_marks_the_document_failed_and_nothing_partial_is_searchable(settings_env, sample, small_disk):
    settings = settings_env(db_uri=small_disk / "lancedb")
    first = sample("ca2_1-1.pdf")
    assert ingest_documents([str(first)])["documents_new"] == 1
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    with filler.open("wb") as handle:  # leave a few kilobytes: the next document's rows cannot fit
        handle.write(b"\0" * max(free - 16_384, 0))

    second = sample("ca1_00117684624.pdf")
    summary = ingest_documents([str(second)])

    assert summary["documents_new"] == 0
    reasons = [f["reason"] for f in summary["failures"] if f["path"] == str(second)]
    assert reasons == ["database write failed: no space left on device"], summary
    store = open_store(settings.db_uri)
    complete = {row["source_path"] for row in store.documents() if row["status"] == STATUS_COMPLETE}
    assert complete == {str(first)}
    hits = search("Governor Mills executive orders on gatherings", k=20)
    assert {hit.source for hit in hits} <= {str(first)}

    filler.unlink()
    again = ingest_documents([str(second)], retry_failed=True)
    assert again["documents_new"] == 1 and not again["failures"]
    assert {row["source_path"] for row in store.documents() if row["status"] == STATUS_COMPLETE} == {str(first), str(second)}
