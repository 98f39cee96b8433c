"""Damaged, encrypted and non-PDF input, on the real files of the damaged-PDF corpus (tests/data/corpus/broken): every file ends as an ingested
document or a recorded failure with a reason a person understands, and the batch goes on."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from paths import CORPUS
from flows.ingest import ingest_documents
from tasks.store import open_store

BROKEN = CORPUS / "broken"

EXPECTED_FAILURES = {
    "empty.pdf": "empty file (0 bytes)",
    "qpdf-bad1.pdf": "not a PDF",
    "qpdf-issue-335b.pdf": "not a PDF",
    "qpdf-bad7.pdf": "damaged PDF",
    "qpdf-bad35.pdf": "damaged PDF",
    "qpdf-enc-R2-user-view.pdf": "encrypted: no password configured",
}


@pytest.fixture(scope="module")
def broken_batch(tmp_path_factory):
    """One ingest of every broken file plus one good filing, shared by the assertions below."""
    inbox = tmp_path_factory.mktemp("broken-inbox")
    for path in BROKEN.iterdir():
        shutil.copyfile(path, inbox / path.name)
    shutil.copyfile(CORPUS / "court" / "ca2_1-1.pdf", inbox / "good-filing.pdf")
    db = tmp_path_factory.mktemp("broken-db")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCINTEL_DB_URI", str(db))
        from docintel.settings import get_settings

        get_settings.cache_clear()
        started = time.perf_counter()
        summary = ingest_documents([str(inbox)])
        elapsed = time.perf_counter() - started
        store_rows = {
            "documents": open_store(str(db)).documents(),
            "failures": open_store(str(db)).failures(),
        }
        get_settings.cache_clear()
    return summary, store_rows, elapsed, inbox


def test_every_broken_file_ends_ingested_or_failed_with_a_reason(broken_batch):
    summary, rows, elapsed, inbox = broken_batch
    ingested = {row["file_name"] for row in rows["documents"] if row["status"] == "complete"}
    failed = {row["source_path"].rsplit("/", 1)[-1]: row["reason"] for row in rows["failures"] if row["page_number"] == 0}
    every_file = {path.name for path in inbox.iterdir()}
    assert ingested | set(failed) == every_file
    assert not ingested & set(failed)
    for name, expected in EXPECTED_FAILURES.items():
        assert failed[name].startswith(expected), (name, failed[name])
    assert "good-filing.pdf" in ingested
    assert "qpdf-pages-loop.pdf" in ingested and "qpdf-enc-R3-nouser.pdf" in ingested
    reasons = " ".join(row["reason"] for row in rows["failures"])
    assert "Traceback" not in reasons and "File \"" not in reasons
    assert summary["documents_failed"] == len(EXPECTED_FAILURES)


def test_repaired_documents_are_noted_as_such(broken_batch):
    _, rows, _, _ = broken_batch
    notes = {row["file_name"]: row["note"] for row in rows["documents"]}
    assert notes["qpdf-bad11.pdf"].startswith("repaired:")
    assert notes["good-filing.pdf"] == ""


def test_encrypted_pdf_ingests_with_its_configured_password(settings_env, tmp_path):
    target = tmp_path / "sealed exhibit.pdf"
    shutil.copyfile(BROKEN / "qpdf-enc-R2-user-view.pdf", target)
    settings = settings_env(pdf_passwords=json.dumps({"sealed exhibit.pdf": "view"}))

    summary = ingest_documents([str(target)])

    assert summary["documents_new"] == 1 and not summary["failures"]
    assert open_store(settings.db_uri).documents()[0]["page_count"] > 0


def test_wrong_password_is_named_as_such(settings_env, tmp_path):
    target = tmp_path / "sealed.pdf"
    shutil.copyfile(BROKEN / "qpdf-enc-R2-user-view.pdf", target)
    settings_env(pdf_passwords=json.dumps({"sealed.pdf": "not-the-password"}))

    summary = ingest_documents([str(target)])

    assert summary["failures"][0]["reason"] == "encrypted: the configured password is wrong"
    assert "not-the-password" not in json.dumps(summary)


def test_limits_fail_a_file_with_the_limit_named(settings_env, sample):
    path = sample("ca1_00117684624.pdf")
    settings_env(max_pages=5)
    summary = ingest_documents([str(path)])
    assert summary["failures"][0]["reason"] == "too many pages: 17 exceeds the limit of 5 (DOCINTEL_MAX_PAGES)"


def test_awkward_file_names_are_ingested_without_a_shell(settings_env, sample):
    names = ["-leading dash.pdf", "quote's \"and\" spaces.pdf", "new\nline.pdf", "résumé §1983 — brief.pdf"]
    paths = [sample("ca2_1-1.pdf", name) for name in names[:1]]
    # different bytes per name, so each is its own document
    for name, source in zip(names[1:], ["gov.uscourts.cacd.652774.40.0.pdf", "ca1_00117684624.pdf", "ca5_00516242060.pdf"]):
        paths.append(sample(source, name))
    settings = settings_env()

    summary = ingest_documents([str(path) for path in paths])

    assert summary["documents_new"] == 4 and not summary["failures"]
    assert {row["file_name"] for row in open_store(settings.db_uri).documents()} == set(names)


def test_bounded_fuzz_of_the_pdf_opening_path_never_hangs_or_crashes():
    from benchmarks.fuzz_pdfs import fuzz
    from docintel.settings import Settings

    result = fuzz(count=25, seed=7, settings=Settings(document_timeout_seconds=20, render_timeout_seconds=20))
    assert result["hung"] == 0
    assert result.get("ingested", 0) + result.get("failed with reason", 0) == 25


def test_encrypted_pdf_password_from_a_prefect_secret_block(settings_env, tmp_path):
    from prefect.blocks.system import Secret

    from tasks.passwords import _passwords_from_secret_block

    Secret(value=json.dumps({"exhibit-7.pdf": "view"})).save("docintel-test-pdf-passwords", overwrite=True)
    _passwords_from_secret_block.cache_clear()
    target = tmp_path / "exhibit-7.pdf"
    shutil.copyfile(BROKEN / "qpdf-enc-R2-user-view.pdf", target)
    settings_env(pdf_passwords_secret_block="docintel-test-pdf-passwords")

    summary = ingest_documents([str(target)])

    assert summary["documents_new"] == 1 and not summary["failures"]
    assert "view" not in json.dumps(summary["documents"])
