"""``ingest-batch``: find the new or changed files in an inbox and spread them over the GPU nodes.

One scheduled (or UI-triggered) run of this flow:

1. lists the inbox (a folder, or a glob whose folder part is the inbox), refusing symbolic links that lead out of the
   inbox, ``..`` escapes and anything that is not a regular .pdf/.txt file, each with its reason;
2. identifies every file by SHA-256 and keeps only the ones the shared ``documents`` table does not hold as complete
   (new or changed bytes); files with a recorded whole-document failure are reported, not re-sent, unless
   ``retry_failed``;
3. balances them over the nodes by page count (greedy: largest document first, onto the least loaded node with a live
   worker) and starts ``ingest-documents/<node>`` on each node as a subflow run (``run_deployment``), all at once;
4. watches the child runs. A child that is Running while every worker that could have started it has stopped
   heart-beating (the node died) is marked Crashed, and its documents that did not land are re-dispatched to the live
   nodes (``max_rounds``). Writes are upserts by id, so a document written twice still lands once;
5. reads the outcome from the shared database (the source of truth on every node, no result storage needed) and
   publishes one table artifact ``ingest-batch-summary``: per document its status, pages, chunks, citations,
   failures and node.
"""

from __future__ import annotations

import glob
import os
import stat
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.context import FlowRunContext
from prefect.deployments import run_deployment
from prefect.states import Crashed
from pydantic import Field

from docintel.settings import get_settings
from tasks.identify import SUPPORTED_SUFFIXES, sha256_of_file
from tasks.store import DOCUMENTS, FAILURES, STATUS_COMPLETE, open_store

INGEST_FLOW = "ingest-documents"
SUMMARY_KEY = "ingest-batch-summary"
ACTIVE_STATES = {StateType.PENDING, StateType.RUNNING}


# ---- the inbox ----------------------------------------------------------------------------------------------------
@dataclass
class InboxListing:
    root: Path  # the inbox folder, resolved
    files: list[Path] = field(default_factory=list)  # resolved, inside root, regular, supported
    refused: list[dict] = field(default_factory=list)  # {"path", "reason"}


def _inbox_root(inbox: str) -> tuple[Path, str | None]:
    """The inbox folder and, for a glob, the pattern. A glob's inbox is its folder part before the first wildcard."""
    if glob.has_magic(inbox):
        parts = Path(inbox).parts
        fixed = [part for part in parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]]
        return Path(*fixed) if fixed else Path("."), inbox
    return Path(inbox), None


def _allowed_roots() -> list[Path]:
    raw = os.environ.get("DOCINTEL_INBOX_ROOTS", "")
    return [Path(part).resolve() for part in raw.split(os.pathsep) if part.strip()]


def list_inbox(inbox: str) -> InboxListing:
    """Candidate files of the inbox. Refused (with a reason): ``..`` in the inbox, symbolic links whose target lies
    outside the inbox, non-regular files (FIFOs, devices), unsupported types. Hidden files are ignored."""
    if ".." in Path(inbox).parts:
        raise ValueError(f"inbox {inbox!r} contains '..': give the inbox folder itself")
    root, pattern = _inbox_root(inbox)
    if not root.is_dir():
        raise ValueError(f"inbox folder {str(root)!r} does not exist or is not a folder")
    real_root = root.resolve()
    allowed = _allowed_roots()
    if allowed and not any(real_root.is_relative_to(base) for base in allowed):
        raise ValueError(f"inbox {str(real_root)!r} lies outside DOCINTEL_INBOX_ROOTS")
    listing = InboxListing(real_root)

    def refuse(path: Path, reason: str) -> None:
        listing.refused.append({"path": str(path), "reason": reason})

    if pattern is None:
        candidates: list[Path] = []
        for folder, dirnames, filenames in os.walk(root, followlinks=False):
            for name in list(dirnames):
                sub = Path(folder, name)
                if sub.is_symlink() and not sub.resolve().is_relative_to(real_root):
                    refuse(sub, f"refused: symbolic link to a folder outside the inbox (-> {sub.resolve()})")
            candidates += [Path(folder, name) for name in filenames]
    else:
        candidates = [Path(p) for p in glob.glob(pattern, recursive=True)]
    seen: set[Path] = set()
    for path in sorted(candidates):
        if path.name.startswith("."):
            continue
        real = path.resolve()
        if not real.is_relative_to(real_root):
            what = "symbolic link" if path.is_symlink() or real != path.absolute() else "path"
            refuse(path, f"refused: {what} leads outside the inbox (-> {real})")
            continue
        if not real.exists():
            refuse(path, "refused: dangling symbolic link")
            continue
        if not stat.S_ISREG(real.stat().st_mode):
            if not real.is_dir():
                refuse(path, "refused: not a regular file")
            continue
        if real.suffix.lower() not in SUPPORTED_SUFFIXES:
            refuse(path, f"refused: unsupported file type {real.suffix or '(none)'!r}; only .pdf and .txt are read")
            continue
        if real not in seen:
            seen.add(real)
            listing.files.append(real)
    return listing


def page_weight(path: Path) -> int:
    """Pages of work in a file: pdfinfo's page count (1 for a file pdfinfo cannot read: the node reports why), or a
    text file's pages (form feeds)."""
    if path.suffix.lower() == ".txt":
        return max(1, path.read_bytes().count(b"\f") + 1)
    try:
        out = subprocess.run(
            ["pdfinfo", str(path)], capture_output=True, timeout=30, stdin=subprocess.DEVNULL
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return 1
    for line in out.splitlines():
        if line.startswith("Pages:"):
            return max(1, int(line.split()[1]))
    return 1


def balance(weights: dict[str, int], nodes: list[str]) -> dict[str, list[str]]:
    """Greedy longest-processing-time: the heaviest document first, onto the node with the fewest pages so far."""
    load = {node: 0 for node in nodes}
    plan: dict[str, list[str]] = {node: [] for node in nodes}
    for path, weight in sorted(weights.items(), key=lambda item: (-item[1], item[0])):
        node = min(nodes, key=lambda n: (load[n], nodes.index(n)))
        plan[node].append(path)
        load[node] += weight
    return {node: paths for node, paths in plan.items() if paths}


# ---- nodes and child runs -----------------------------------------------------------------------------------------
def _stale(worker: Any, now: datetime) -> bool:
    if getattr(worker.status, "value", worker.status) == "OFFLINE" or worker.last_heartbeat_time is None:
        return True
    interval = worker.heartbeat_interval_seconds or 30
    return (now - worker.last_heartbeat_time).total_seconds() > 3 * interval


def live_nodes(client, nodes: list[str], pools: dict[str, str]) -> list[str]:
    """Nodes whose work pool has a worker that heart-beat recently."""
    now = datetime.now(timezone.utc)
    return [node for node in nodes if any(not _stale(w, now) for w in client.read_workers_for_work_pool(pools[node]))]


def orphaned(client, run: Any) -> bool:
    """A Pending/Running child whose worker is gone: every worker of its pool that existed when the run was picked up
    has stopped heart-beating. (A worker restarted after the crash registers anew and cannot own the old run.)"""
    if run.state_type not in ACTIVE_STATES or not run.work_pool_name:
        return False
    since = run.state.timestamp if run.state else None
    if run.start_time and (since is None or run.start_time < since):
        since = run.start_time
    now = datetime.now(timezone.utc)
    workers = [w for w in client.read_workers_for_work_pool(run.work_pool_name) if since and w.created <= since]
    return bool(workers) and all(_stale(w, now) for w in workers)


@dataclass
class Child:
    node: str
    round: int
    paths: list[str]
    run_id: Any
    run_name: str = ""
    outcome: str = ""  # final state name, "orphaned" or "timed out"


# ---- the flow -----------------------------------------------------------------------------------------------------
@flow(name="ingest-batch", log_prints=True)
def ingest_batch(
    inbox: Annotated[str, Field(min_length=1)] = "data/inbox",
    nodes: Annotated[list[str], Field(min_length=1)] = ["spark-1", "spark-2"],  # noqa: B006 (never mutated)
    retry_failed: bool = False,
    max_rounds: Annotated[int, Field(ge=1, le=5)] = 2,
    timeout_minutes: Annotated[float, Field(gt=0)] = 240.0,
    poll_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0,
) -> dict:
    """Ingest the new or changed files of an inbox on all GPU nodes; publishes the table artifact ingest-batch-summary.

    Args:
        inbox: Inbox folder (read recursively) or glob, e.g. /srv/inbox or /srv/inbox/**/*.pdf. Every node must see
            it at the same path. Symbolic links leading out of it are refused.
        nodes: Nodes to spread the work over, balanced by page count; each needs a deployment ingest-documents/NODE.
        retry_failed: Also re-send files whose earlier ingestion failed, and documents with failed pages.
        max_rounds: Dispatch rounds: the documents of a node that died are sent to the live nodes again.
        timeout_minutes: Stop waiting for the node runs after this long (they keep running; the summary says so).
        poll_seconds: How often the node runs are checked.
    """
    logger = get_run_logger()
    started = time.perf_counter()
    settings = get_settings()
    store = open_store(settings.db_uri)

    listing = list_inbox(inbox)
    rows: dict[str, dict] = {}  # path -> summary row
    for refused in listing.refused:
        rows[refused["path"]] = {"path": refused["path"], "status": refused["reason"]}

    # 1. What is new or changed (by SHA-256 against the shared documents table)?
    complete = {
        row["document_id"]: row
        for row in store.rows(DOCUMENTS, columns=["document_id", "status", "failed_pages", "source_path", "node"])
        if row["status"] == STATUS_COMPLETE
    }
    recorded_failures = {
        row["document_id"]: row["reason"]
        for row in store.rows(FAILURES, "page_number = 0", ["document_id", "reason", "stage"])
        if row["document_id"] and row["stage"] != "inbox"
    }
    to_send: dict[str, str] = {}  # path -> document_id
    first_path: dict[str, str] = {}  # document_id -> path (identical copies are sent once)
    for path in listing.files:
        key = str(path)
        document_id = sha256_of_file(path)
        if document_id in first_path:
            rows[key] = {"path": key, "status": f"duplicate of {first_path[document_id]}", "document_id": document_id}
            continue
        first_path[document_id] = key
        done = complete.get(document_id)
        if done and not (retry_failed and done["failed_pages"]):
            rows[key] = {"path": key, "status": "unchanged", "document_id": document_id, "node": done["node"]}
        elif document_id in recorded_failures and not done and not retry_failed:
            rows[key] = {"path": key, "status": f"failed (recorded): {recorded_failures[document_id]}",
                         "document_id": document_id}  # fmt: skip
        else:
            to_send[key] = document_id
    if listing.refused:
        from docintel.records import Failure

        store.record_failures(
            [Failure(item["path"], item["reason"], "inbox") for item in listing.refused], f"batch:{settings.node_name}"
        )
        for item in listing.refused:
            logger.warning("%s: %s", item["path"], item["reason"])

    weights = {path: page_weight(Path(path)) for path in to_send}
    logger.info("inbox %s: %d files, %d new or changed (%d pages), %d refused",
                listing.root, len(listing.files), len(to_send), sum(weights.values()), len(listing.refused))  # fmt: skip

    # 2. Dispatch, watch, re-dispatch what a dead node left behind.
    children: list[Child] = []
    context = FlowRunContext.get()
    batch_id = str(context.flow_run.id) if context and context.flow_run else str(time.time())
    batch_name = context.flow_run.name if context and context.flow_run else "batch"
    deadline = time.monotonic() + timeout_minutes * 60
    pending = dict(weights)
    with get_client(sync_client=True) as client:
        pools = {node: client.read_deployment_by_name(f"{INGEST_FLOW}/{node}").work_pool_name for node in nodes}
        for round_number in range(1, max_rounds + 1):
            if not pending:
                break
            alive = live_nodes(client, nodes, pools)
            while not alive and time.monotonic() < deadline:
                logger.warning("no node has a live worker (pools %s); waiting", sorted(pools.values()))
                time.sleep(max(poll_seconds, 5))
                alive = live_nodes(client, nodes, pools)
            if not alive:
                break
            plan = balance(pending, alive)
            this_round: list[Child] = []
            for node, paths in plan.items():
                run = run_deployment(
                    f"{INGEST_FLOW}/{node}",
                    parameters={"paths": paths, "retry_failed": retry_failed},
                    flow_run_name=f"{batch_name}-{node}-r{round_number}",
                    idempotency_key=f"{batch_id}:{round_number}:{node}",
                    tags=["ingest-batch"],
                    timeout=0,
                    as_subflow=True,
                )
                child = Child(node, round_number, paths, run.id, run.name)
                this_round.append(child)
                logger.info("round %d: %d documents (%d pages) -> %s (run %s)", round_number, len(paths),
                            sum(pending[p] for p in paths), node, run.name)  # fmt: skip
            children += this_round
            watch(client, this_round, deadline, poll_seconds, logger)
            landed = _landed(store, {to_send[p] for p in pending})
            retry = [c for c in this_round if c.outcome in ("orphaned", "Crashed", "Failed")]
            pending = {p: pending[p] for c in retry for p in c.paths if to_send[p] not in landed}
            if pending:
                logger.warning("%d documents did not land after round %d (nodes %s); re-dispatching",
                               len(pending), round_number, sorted({c.node for c in retry}))  # fmt: skip

    # 3. The outcome, from the shared database.
    summary = _summarize(store, rows, to_send, weights, children, time.perf_counter() - started)
    create_table_artifact(
        key=SUMMARY_KEY,
        table=summary["documents"],
        description=_describe(summary),
    )
    return summary


def watch(client, children: list[Child], deadline: float, poll_seconds: float, logger) -> None:
    """Wait for the child runs: each ends in a final state, is found orphaned (marked Crashed) or times out."""
    waiting = list(children)
    while waiting:
        for child in list(waiting):
            run = client.read_flow_run(child.run_id)
            if run.state and run.state.is_final():
                child.outcome = run.state.name if run.state_type != StateType.CRASHED else "Crashed"
            elif orphaned(client, run):
                child.outcome = "orphaned"
                client.set_flow_run_state(
                    child.run_id,
                    Crashed(message="ingest-batch: the node's worker stopped heart-beating; documents re-dispatched"),
                    force=True,
                )
                logger.warning("run %s on %s is orphaned (its worker is gone); marked Crashed", child.run_name,
                               child.node)  # fmt: skip
            elif time.monotonic() > deadline:
                child.outcome = "timed out"
            if child.outcome:
                waiting.remove(child)
        if waiting:
            time.sleep(poll_seconds)


def _landed(store, document_ids: set[str]) -> set[str]:
    """Documents that are complete, or whose whole-document failure is recorded (a node finished with them)."""
    done = {row["document_id"] for row in store.rows(DOCUMENTS, columns=["document_id", "status"])
            if row["status"] == STATUS_COMPLETE}  # fmt: skip
    failed = {row["document_id"] for row in store.rows(FAILURES, "page_number = 0", ["document_id"])}
    return (done | failed) & document_ids


def _summarize(store, rows: dict, to_send: dict, weights: dict, children: list[Child], seconds: float) -> dict:
    documents = {row["document_id"]: row for row in store.rows(DOCUMENTS)}
    failures: dict[str, list[dict]] = {}
    for row in store.rows(FAILURES):
        failures.setdefault(row["document_id"], []).append(row)
    sent_by: dict[str, Child] = {}
    for child in children:
        for path in child.paths:
            sent_by[path] = child  # the last round that carried it
    for path, document_id in to_send.items():
        document = documents.get(document_id)
        child = sent_by.get(path)
        whole = [f for f in failures.get(document_id, []) if f["page_number"] == 0]
        row: dict[str, Any] = {"path": path, "document_id": document_id}
        if document and document["status"] == STATUS_COMPLETE:
            page_failures = [f"p{f['page_number']}: {f['reason']}" for f in failures.get(document_id, [])
                             if f["page_number"] > 0]  # fmt: skip
            row.update(status="ingested", pages=document["page_count"], chunks=document["chunk_count"],
                       citations=document["citation_count"], failed_pages=document["failed_pages"],
                       failures="; ".join(page_failures), node=document["node"])  # fmt: skip
        elif whole:
            row.update(status="failed", failures=whole[0]["reason"], node=whole[0]["node"], pages=weights.get(path))
        elif child is None:
            row.update(status="not dispatched: no node had a live worker")
        else:
            row.update(status=f"not ingested: run {child.run_name} on {child.node} ended {child.outcome or 'unknown'}")
        row["run"] = child.run_name if child else ""
        row["round"] = child.round if child else 0
        rows[path] = row
    table = [
        {key: row.get(key, "") for key in
         ("path", "status", "pages", "chunks", "citations", "failed_pages", "failures", "node", "run", "round")}
        for row in sorted(rows.values(), key=lambda r: r["path"])
    ]  # fmt: skip
    ingested = [row for row in table if row["status"] == "ingested"]
    per_node: dict[str, dict] = {}
    for row in ingested:
        entry = per_node.setdefault(row["node"], {"documents": 0, "pages": 0, "chunks": 0})
        entry["documents"] += 1
        entry["pages"] += row["pages"] or 0
        entry["chunks"] += row["chunks"] or 0
    return {
        "documents": table,
        "ingested": len(ingested),
        "unchanged": sum(row["status"] == "unchanged" for row in table),
        "failed": sum(row["status"].startswith("failed") for row in table),
        "refused": sum(row["status"].startswith("refused") for row in table),
        "not_ingested": sum(row["status"].startswith("not ") for row in table),
        "per_node": per_node,
        "runs": [{"node": c.node, "round": c.round, "run": c.run_name, "run_id": str(c.run_id), "outcome": c.outcome,
                  "documents": len(c.paths), "pages": sum(weights[p] for p in c.paths)} for c in children],  # fmt: skip
        "seconds": round(seconds, 2),
    }


def _describe(summary: dict) -> str:
    nodes = ", ".join(f"{node}: {v['documents']} documents, {v['pages']} pages" for node, v in summary["per_node"].items())
    return (
        f"ingest-batch: {summary['ingested']} ingested, {summary['unchanged']} unchanged, {summary['failed']} failed, "
        f"{summary['refused']} refused, {summary['not_ingested']} not ingested in {summary['seconds']} s"
        + (f" ({nodes})" if nodes else "")
    )
