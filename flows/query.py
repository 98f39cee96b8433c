"""Search and question flows for the Prefect UI and schedules; the CLI calls the same functions directly."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from docintel.settings import get_settings
from tasks.answer import answer_question as compose_answer
from tasks.limits import model_server_slot
from tasks.search import SearchFilters, search


def _hits_markdown(query: str, hits: list) -> str:
    lines = [f"# Search: {query}", ""]
    for rank, hit in enumerate(hits, 1):
        lines += [f"**{rank}. {hit.source}, page {hit.page}** (score {hit.score:.4f})", "", f"> {hit.text[:600]}", ""]
    return "\n".join(lines) if hits else f"# Search: {query}\n\nNo results."


@flow(name="search-documents")
def search_documents(query: str, k: int = 8, document: str = "", citation: str = "") -> list[dict]:
    """Hybrid (vector + full-text) search over ingested passages; optional filters by document and cited authority.

    Args:
        query: What to look for, in words or as a citation (e.g. 410 U.S. 113).
        k: How many passages to return.
        document: Only this document: id, id prefix, path or file name (empty: all).
        citation: Only passages citing this authority, e.g. 410 U.S. 113 (empty: any).
    """
    hits = search(query, k, SearchFilters(document=document, citation=citation))
    create_markdown_artifact(key="search-results", markdown=_hits_markdown(query, hits))
    return [hit.to_json() for hit in hits]


@flow(name="answer-question")
def answer_question(question: str, k: int = 8, document: str = "") -> dict:
    """Answer from the ingested documents, citing page-level sources; reasoning is kept apart from the answer.

    Args:
        question: The question, in plain words.
        k: How many passages the answer may draw on.
        document: Only this document: id, id prefix, path or file name (empty: all).
    """
    with model_server_slot("llm", get_settings()):
        answer = compose_answer(question, k, SearchFilters(document=document))
    sources = "\n".join(f"- [{s.number}] {s.source}, page {s.page}" for s in answer.sources)
    reasoning = f"\n\n## Reasoning\n\n{answer.reasoning}" if answer.reasoning else ""
    create_markdown_artifact(
        key="answer", markdown=f"# {question}\n\n{answer.answer}\n\n## Sources\n\n{sources or '-'}{reasoning}"
    )
    return answer.to_json()
