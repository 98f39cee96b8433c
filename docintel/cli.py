"""`docintel`: ingest, search, ask, show, status, failures.

Only `ingest` pays Prefect's start-up (a real flow run); the interactive commands call the same functions directly.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from docintel.cli_models import models_app
from docintel.settings import get_settings

app = typer.Typer(help="Hydra DocIntel: legal documents in, cited and searchable knowledge out.", no_args_is_help=True)
app.add_typer(models_app, name="models", help="The vLLM model servers: up, down, status.")
console = Console(stderr=True)
out = Console()


def _print_json(value) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


class _ProgressBar:
    """Documents and pages as two bars; fed by the ingest flow's progress events."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.documents = progress.add_task("documents", total=0)
        self.pages = progress.add_task("pages", total=0)

    def add_work(self, documents: int, pages: int) -> None:
        self.progress.update(self.documents, total=documents)
        self.progress.update(self.pages, total=pages)

    def page_done(self, source_path: str, page_number: int) -> None:
        self.progress.advance(self.pages)

    def document_done(self, source_path: str, status: str) -> None:
        self.progress.advance(self.documents)


@app.command()
def ingest(
    paths: list[str] = typer.Argument(..., help="PDF or .txt files, folders, or glob patterns."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Try again documents and pages that failed before."),
) -> None:
    """Ingest documents (a Prefect flow run). Exit code 2 when some inputs failed."""
    import os

    # Task logs still reach the Prefect API (and UI); the terminal shows the progress bar and warnings.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from docintel import progress
    from flows.ingest import ingest_documents

    columns = (TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=as_json, disable=as_json) as bar:
        progress.set_listener(_ProgressBar(bar))
        try:
            summary = ingest_documents(paths=list(paths), retry_failed=retry_failed)
        finally:
            progress.set_listener(None)
    if as_json:
        _print_json(summary)
    else:
        out.print(
            f"[bold]{summary['documents_new']}[/] new, {summary['documents_unchanged']} unchanged, "
            f"{summary['documents_failed']} failed; {summary['pages']} pages ({summary['ocr_pages']} OCR), "
            f"{summary['chunks_written']} passages, {summary['citations']} citations in {summary['seconds']} s"
        )
        for failure in summary["failures"]:
            where = f" page {failure['page']}" if failure["page"] else ""
            out.print(f"[red]failed[/] {failure['path']}{where}: {failure['reason']}")
    raise typer.Exit(2 if summary["failures"] else 0)


@app.command()
def search(
    query: str,
    k: int = typer.Option(None, "--k", "-k", help="Number of passages."),
    document: str = typer.Option("", help="Only this document (id, id prefix, path or file name)."),
    citation: str = typer.Option("", help="Only passages citing this authority, e.g. '410 U.S. 113'."),
    cited_court: str = typer.Option("", help="Only passages citing a case of this court (eyecite id, e.g. 'scotus')."),
    cited_party: str = typer.Option("", help="Only passages citing a case with this party name."),
    cited_year_from: int = typer.Option(0, help="Only passages citing a case decided in or after this year."),
    cited_year_to: int = typer.Option(0, help="Only passages citing a case decided in or before this year."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Hybrid search over ingested passages. A document named in the query scopes it, a citation filters it,
    a "quoted phrase" must match verbatim."""
    from tasks.search import SearchFilters, search_with_details

    filters = SearchFilters(document=document, citation=citation, cited_court=cited_court, cited_party=cited_party,
                            cited_year_from=cited_year_from, cited_year_to=cited_year_to)  # fmt: skip
    found = search_with_details(query, k, filters)
    hits, elapsed_ms = found.hits, found.latency_ms
    if as_json:
        _print_json({"query": query, "latency_ms": elapsed_ms, "hits": [hit.to_json() for hit in hits],
                     "documents": found.documents, "phrases": found.phrases, "citations": found.citations,
                     "notes": found.notes})  # fmt: skip
        return
    for note in found.notes:
        console.print(f"[yellow]note:[/] {note}")
    if not hits:
        out.print("No results.")
    for rank, hit in enumerate(hits, 1):
        out.print(f"[bold]{rank}.[/] {hit.source} [cyan]page {hit.page}[/] (score {hit.score:.4f})")
        if hit.heading:
            out.print(f"   [dim]{hit.heading}[/]")
        out.print(f"   {hit.text[:400].replace(chr(10), ' ')}")
        if hit.citations:
            out.print(f"   [dim]cites: {'; '.join(hit.citations[:6])}[/]")
    console.print(f"[dim]{len(hits)} hits in {elapsed_ms:.0f} ms[/]")


@app.command()
def ask(
    question: str,
    k: int = typer.Option(None, "--k", "-k", help="Passages given to the answerer."),
    document: str = typer.Option("", help="Only this document (id, id prefix, path or file name)."),
    as_json: bool = typer.Option(False, "--json"),
    show_reasoning: bool = typer.Option(False, "--show-reasoning", help="Print the model's reasoning too."),
) -> None:
    """Answer a question from the ingested documents, with page-level sources and a grounding check."""
    from tasks.answer import answer_question
    from tasks.search import SearchFilters

    answer = answer_question(question, k, SearchFilters(document=document))
    if as_json:
        _print_json(answer.to_json())
        return
    if show_reasoning and answer.reasoning:
        out.print("[dim]Reasoning:[/]")
        out.print(f"[dim]{answer.reasoning}[/]\n")
    out.print(answer.answer)
    if answer.sources:
        out.print("\n[bold]Sources[/]")
        for source in answer.sources:
            out.print(f"  [{source.number}] {source.source}, page {source.page} (chars {source.start}-{source.end})")
    unsupported = [check for check in answer.grounding if not check.supported]
    if unsupported:
        out.print(f"\n[red bold]{len(unsupported)} sentence(s) not supported by the passages they cite:[/]")
        for check in unsupported:
            out.print(f"  [red]-[/] {check.sentence}")
    for note in answer.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"[dim]{answer.backend} answer in {answer.latency_ms:.0f} ms[/]")


@app.command()
def show(document: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Per-page text of a document and the path each page took (text layer, pdf2image+OCR, ghostscript+OCR)."""
    from docintel.records import PAGE_SEPARATOR
    from tasks.store import open_store

    store = open_store(get_settings().db_uri)
    row = _document_or_exit(document)
    pages = store.pages(row["document_id"])
    if as_json:
        _print_json({
            "document": row,
            "text": PAGE_SEPARATOR.join(page["text"] for page in pages),
            "pages": [{k: page[k] for k in ("page_number", "method", "text", "char_count", "ocr_seconds", "error")}
                      for page in pages],
        })  # fmt: skip
        return
    out.print(f"[bold]{row['source_path']}[/] ({row['document_id'][:12]}, {row['page_count']} pages, {row['status']})")
    for page in pages:
        out.rule(f"page {page['page_number']} · {page['method']}" + (f" · {page['error']}" if page["error"] else ""))
        out.print(page["text"], markup=False, highlight=False)


@app.command()
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """What the database holds and which backends are configured."""
    from tasks.store import CHUNKS, CITATIONS, DOCUMENTS, FAILURES, PAGES, open_store

    settings = get_settings()
    store = open_store(settings.db_uri)
    recorded = store.recorded_embedding()
    report = {
        "database": settings.db_uri,
        "documents": store.count(DOCUMENTS),
        "pages": store.count(PAGES),
        "chunks": store.count(CHUNKS),
        "citations": store.count(CITATIONS),
        "failures": store.count(FAILURES),
        "embedding_model": recorded[0] if recorded else None,
        "embedding_dimension": recorded[1] if recorded else None,
        "backends": {"ocr": settings.ocr_backend, "embeddings": settings.embed_backend, "answers": settings.llm_backend},
        "node": settings.node_name,
    }
    if as_json:
        _print_json(report)
        return
    table = Table(show_header=False)
    for key, value in report.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    out.print(table)


@app.command()
def failures(as_json: bool = typer.Option(False, "--json")) -> None:
    """What failed, when, why, and whether a retry is pending (`docintel ingest --retry-failed`)."""
    from tasks.store import open_store

    rows = open_store(get_settings().db_uri).failures()
    fields = ("source_path", "page_number", "stage", "reason", "retry_pending", "occurred_at", "node")
    if as_json:
        _print_json([{key: row[key] for key in fields} for row in rows])
        return
    table = Table(*fields)
    for row in rows:
        table.add_row(*(str(row[key]) for key in fields))
    out.print(table if rows else "No failures recorded.")


@app.command()
def reembed(as_json: bool = typer.Option(False, "--json")) -> None:
    """Re-embed every stored passage with the configured embedding model (after switching models)."""
    from flows.reembed import reembed_documents

    result = reembed_documents()
    if as_json:
        _print_json(result)
    else:
        out.print(f"re-embedded {result['chunks']} passages with {result['model']} ({result['dimension']}-dim)")


@app.command()
def verify(
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
    informational: list[str] = typer.Option(
        [], "--informational", help="A check to report without failing on (repeatable), e.g. embedding-ranking."
    ),
) -> None:
    """Check the live stack end to end (a Prefect flow run): OCR, embeddings, search, answers. Exit 1 on a failure."""
    import os

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.verify import stack_ok, verify_stack

    checks = verify_stack(informational=list(informational))
    if as_json:
        _print_json(checks)
    else:
        table = Table("check", "result", "seconds", "detail")
        for check in checks:
            if check["passed"]:
                result = "[green]pass[/]"
            else:
                result = "[red]FAIL[/]" if check["required"] else "[yellow]fail (informational)[/]"
            table.add_row(check["name"], result, f"{check['seconds']:.2f}", check["detail"])
        out.print(table)
    raise typer.Exit(0 if stack_ok(checks) else 1)


demo_app = typer.Typer(help="Demonstrations over data/samples.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")

DEMO_QUESTIONS = [
    "What did Executive Order 14 prohibit, and when was it issued?",
    "Why did the First Circuit dismiss the appeal in Calvary Chapel of Bangor v. Mills?",
    "Within how many days must the Acknowledgment and Notice of Appearance Form be returned?",
    "What did the parties stipulate about the non-expert discovery cut-off?",
]


@demo_app.command("ask")
def demo_ask(
    as_json: bool = typer.Option(False, "--json"),
    show_reasoning: bool = typer.Option(True, "--show-reasoning/--hide-reasoning"),
) -> None:
    """Four legal questions over the sample documents (`make run` ingests them), on the configured backend."""
    from tasks.answer import answer_question

    answers = [answer_question(question) for question in DEMO_QUESTIONS]
    if as_json:
        _print_json([answer.to_json() for answer in answers])
        return
    for answer in answers:
        out.rule(answer.question)
        if show_reasoning and answer.reasoning:
            out.print(f"[dim]{answer.reasoning}[/]\n")
        out.print(answer.answer)
        for source in answer.sources:
            out.print(f"  [{source.number}] {source.source}, page {source.page}")
        out.print(f"[dim]{answer.backend}, {answer.latency_ms:.0f} ms[/]")


def _document_or_exit(reference: str) -> dict:
    from tasks.store import open_store

    matches = open_store(get_settings().db_uri).find_documents(reference)
    if len(matches) != 1:
        console.print(f"[red]{'No' if not matches else 'More than one'} ingested document matches {reference!r}[/]")
        raise typer.Exit(1)
    return matches[0]


@app.command("citations")
def list_citations(
    target: str = typer.Argument(..., help="An ingested document (id, path, file name) or a PDF/.txt file."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every legal citation of a document: kind, Bluebook form, the authority it refers to, page and span."""
    from pathlib import Path

    from citations import find_document_citations
    from tasks.citations import citations_from_rows, file_page_texts
    from tasks.store import open_store

    settings = get_settings()
    store = open_store(settings.db_uri)
    if store.find_documents(target) or not Path(target).is_file():
        document = _document_or_exit(target)
        found = citations_from_rows(store.citations(f"document_id = '{document['document_id']}'"))
        source = document["source_path"]
    else:
        found = find_document_citations(file_page_texts(Path(target), settings))
        source = target
    if as_json:
        from dataclasses import asdict

        _print_json({"source": source, "citations": [asdict(citation) for citation in found]})
        return
    table = Table("page", "kind", "as written", "Bluebook form", "authority", title=source)
    for citation in found:
        table.add_row(str(citation.page_number), citation.kind, citation.matched_text, citation.normalized, citation.authority)
    out.print(table)


@app.command()
def authorities(
    document: str,
    output_format: str = typer.Option("markdown", "--format", help="markdown or json"),
    passim: int = typer.Option(5, help="List 'passim' for an authority cited on more pages than this."),
) -> None:
    """The Table of Authorities of an ingested document, as a brief prints it."""
    from citations import render_table_of_authorities_markdown, table_of_authorities
    from tasks.citations import citations_from_rows
    from tasks.store import open_store

    row = _document_or_exit(document)
    found = citations_from_rows(open_store(get_settings().db_uri).citations(f"document_id = '{row['document_id']}'"))
    toa = table_of_authorities(found, passim_threshold=passim)
    if output_format == "json":
        _print_json({"document": row["source_path"], "authorities": toa})
    else:
        sys.stdout.write(render_table_of_authorities_markdown(toa, row["file_name"]) + "\n")


@app.command()
def cites(citation: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every ingested document and page citing this authority in any form (full, short, Id., supra)."""
    from tasks.citations import documents_citing
    from tasks.store import open_store

    key, pages = documents_citing(open_store(get_settings().db_uri), citation)
    if as_json:
        _print_json({"authority": key, "pages": pages})
        return
    if not pages:
        out.print(f"No ingested document cites {key}.")
    for entry in pages:
        forms = ", ".join(sorted({form["kind"] for form in entry["forms"]}))
        out.print(f"{entry['source']} [cyan]page {entry['page']}[/] ({forms})")


def main() -> Optional[int]:
    return app()
