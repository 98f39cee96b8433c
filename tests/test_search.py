"""Search over a real ingest (Prefect flow, MiniLM, LanceDB in a temporary folder): full text, vectors, legal
query handling and exact offsets. One ingest per test session (tests/retrieval_fixtures.py) keeps this fast."""

from __future__ import annotations

import json
import shutil

import lancedb
import pytest

from retrieval_fixtures import retrieval_corpus  # noqa: F401  (session fixture: one ingest for all these tests)
from tasks.search import SearchFilters, search, search_with_details
from tasks.store import CHUNKS, chunk_schema, open_store


@pytest.fixture
def corpus(retrieval_corpus):
    return retrieval_corpus


def _sources(hits) -> list[str]:
    return [hit.source.rsplit("/", 1)[-1] for hit in hits]


def test_exact_phrase_is_found_by_full_text_on_its_page(corpus):
    hits = search("Executive Order 28 directed persons residing in Maine to stay at their homes", 4, settings=corpus)
    assert hits[0].source.endswith("ca1_00117684624.pdf") and hits[0].page == 5
    assert "Executive Order 28" in hits[0].text


def test_paraphrase_is_found_by_vector_search_on_its_page(corpus):
    query = "the governor's emergency decrees restricting the size of public assemblies during the pandemic"
    hits = search(query, 3, settings=corpus.model_copy(update={"search_fusion": "vector", "search_rerank": "none"}))
    assert any(hit.page == 5 and hit.source.endswith("ca1_00117684624.pdf") for hit in hits)


def test_quoted_phrase_must_match_exactly(corpus):
    found = search_with_details('what does "irreparable damage" mean for the parties', 8, settings=corpus)
    assert found.phrases == ["irreparable damage"] and found.hits
    assert all("irreparable damage" in hit.text.lower() for hit in found.hits)
    # a phrase no passage holds is dropped, and the result says so
    missing = search_with_details('"zebra crossing covenant" remedies', 4, settings=corpus)
    assert missing.phrases == [] and any("zebra crossing covenant" in note for note in missing.notes)


def test_named_document_scopes_the_search(corpus):
    found = search_with_details("In the Tiffin merger agreement; what is the definition of Knowledge?", 4, settings=corpus)
    assert set(_sources(found.hits)) == {"Lumen_Tiffin_Merger_Agreement.txt"}
    assert "“Knowledge” means the actual knowledge" in found.hits[0].text
    assert "Definitions" in found.hits[0].heading
    other = search("Consider the Supply Agreement between Acme and Roadrunner; definition of Knowledge", 4, settings=corpus)
    assert set(_sources(other)) == {"Acme_Roadrunner_Supply_Agreement.txt"}


def test_citation_in_the_query_filters_to_passages_citing_it(corpus):
    found = search_with_details("claims under 42 U.S.C. § 1983", 8, settings=corpus)
    assert found.citations == ["42 U.S.C. § 1983"]
    assert found.hits and all("42 U.S.C. § 1983" in hit.citations for hit in found.hits)
    by_filter = search("remedies", 8, SearchFilters(citation="410 U. S. 113"), settings=corpus)
    assert by_filter and all("410 U.S. 113" in hit.citations for hit in by_filter)


def test_hit_offsets_match_the_document_text_that_show_returns(corpus):
    from typer.testing import CliRunner

    from docintel.cli import app

    hits = search("Governor Mills executive orders on gatherings", 6, settings=corpus)
    assert hits
    texts = {}
    for hit in hits:
        if hit.document_id not in texts:
            shown = CliRunner().invoke(app, ["show", hit.document_id, "--json"])
            assert shown.exit_code == 0, shown.output
            texts[hit.document_id] = json.loads(shown.stdout)["text"]
        assert texts[hit.document_id][hit.start : hit.end] == hit.text


def test_headings_are_stored_and_an_older_store_without_them_still_gets_them(corpus, tmp_path):
    query = "In the Tiffin merger agreement; what is the definition of Knowledge?"
    stored = open_store(corpus.db_uri).rows(CHUNKS, columns=["heading"])
    assert stored and all(row["heading"] is not None for row in stored)
    assert any("Definitions" in row["heading"] for row in stored)
    # a database written before the column existed: headings derived from the page text, the same ones
    old_db = tmp_path / "lancedb"
    shutil.copytree(corpus.db_uri, old_db)
    lancedb.connect(str(old_db)).open_table(CHUNKS).drop_columns(["heading"])
    old = corpus.model_copy(update={"db_uri": str(old_db)})
    assert [h.heading for h in search(query, 4, settings=old)] == [h.heading for h in search(query, 4, settings=corpus)]
    # the next write to it adds the column back: null in the old rows (which keep the fallback above)
    table = open_store(str(old_db)).table(CHUNKS, chunk_schema(384))
    assert "heading" in table.schema.names
    assert all(row["heading"] is None for row in table.search().select(["heading"]).limit(None).to_list())
    assert "Definitions" in search(query, 4, settings=old)[0].heading
