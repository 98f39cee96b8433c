"""The `docintel` command line over a real ingest: JSON shapes, exit codes, citations and authorities."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from paths import REPO
from docintel.cli import app
from flows.ingest import ingest_documents

runner = CliRunner()


def _json(*args: str) -> dict | list:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def ingested(settings_env, sample, tmp_path):
    settings = settings_env()
    opinion = sample("ca1_00117684624.pdf")
    notice = sample("ca2_1-1.pdf")
    broken = tmp_path / "inbox" / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n garbage")
    summary = ingest_documents([str(opinion), str(notice), str(broken)])
    return settings, summary, opinion, notice, broken


def test_status_show_and_failures(ingested):
    settings, summary, opinion, _, broken = ingested
    status = _json("status")
    assert status["documents"] == 2 and status["chunks"] == summary["chunks_written"]
    assert status["embedding_model"] == "all-MiniLM-L6-v2" and status["embedding_dimension"] == 384
    assert status["backends"] == {"ocr": "tesseract", "embeddings": "local", "answers": "extractive"}

    shown = _json("show", opinion.name)
    assert len(shown["pages"]) == 17 and {p["method"] for p in shown["pages"]} == {"text_layer"}
    assert "Governor Mills" in shown["text"]

    failures = _json("failures")
    assert [(f["source_path"], f["stage"]) for f in failures] == [(str(broken), "pages")]
    assert failures[0]["reason"].startswith("damaged PDF")


def test_search_hits_carry_offsets_into_the_document_text(ingested):
    _, _, opinion, _, _ = ingested
    text = _json("show", opinion.name)["text"]
    result = _json("search", "executive orders restricting gatherings", "--k", "3")
    assert result["hits"]
    for hit in result["hits"]:
        assert {"source", "document_id", "page", "text", "score", "citations", "start", "end"} <= set(hit)
        if hit["source"] == str(opinion):
            assert text[hit["start"] : hit["end"]] == hit["text"]


def test_ask_answers_with_page_sources(ingested):
    answer = _json("ask", "What did Executive Order 14 prohibit?")
    assert answer["sources"], answer
    assert all(source["page"] >= 1 and source["source"] for source in answer["sources"])
    assert "Extractive answer" in answer["answer"]


def test_citations_authorities_and_cites(ingested):
    _, _, opinion, _, _ = ingested
    found = _json("citations", opinion.name)["citations"]
    jacobson = [c for c in found if c["authority"] == "197 U.S. 11"]
    assert jacobson and jacobson[0]["normalized"].startswith("Jacobson v. Massachusetts, 197 U.S. 11")

    toa = runner.invoke(app, ["authorities", opinion.name, "--format", "json"])
    cases = json.loads(toa.stdout)["authorities"]["Cases"]
    assert any(entry["authority"] == "197 U.S. 11" for entry in cases)

    cited = _json("cites", "197 U. S. 11")
    assert cited["authority"] == "197 U.S. 11"
    assert {entry["page"] for entry in cited["pages"]} == {c["page_number"] for c in jacobson}


def test_ingest_command_prints_json_and_exits_2_when_an_input_failed(settings_env, sample, tmp_path):
    settings = settings_env()
    good = sample("ca2_1-1.pdf")
    bad = tmp_path / "inbox" / "empty.pdf"
    bad.write_bytes(b"")
    env = {**os.environ, "DOCINTEL_DB_URI": str(settings.db_uri)}
    completed = subprocess.run(
        [sys.executable, "-m", "docintel", "ingest", str(good), str(bad), "--json"],
        cwd=REPO, env=env, capture_output=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr.decode()[-2000:]
    summary = json.loads(completed.stdout)
    assert summary["documents_new"] == 1 and summary["documents_failed"] == 1
    assert summary["failures"] == [
        {"path": str(bad), "page": 0, "stage": "pages", "reason": "empty file (0 bytes)"}
    ]
