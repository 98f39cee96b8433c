"""Stage 6: embed passages in batches formed across documents, with a bounded number of requests in flight.

A document's passages rarely fill a batch, and one request at a time leaves a model server idle between round trips:
``EmbeddingStage`` pools the passages of every document that is ready, cuts batches of ``embed_batch_size`` across
them, and keeps up to ``embed_in_flight`` batches running on a task runner of its own (never queued behind OCR
pages). Finished documents come back to the flow thread as events; a document is done when its last passage has its
vector.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from docintel.records import Chunk, error_reason
from docintel.settings import get_settings
from models.backends import embedder
from tasks.limits import model_server_slot


def _worth_retrying(task, task_run, state) -> bool:
    """A request the server rejected (a 4xx, ``retryable`` False) would fail the same way again."""
    return getattr(state.data, "retryable", True)


@task(name="embed-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10], retry_jitter_factor=0.5,
      retry_condition_fn=_worth_retrying)
def embed_batch(chunks: list[Chunk]) -> list[Chunk]:
    """Fill in the vector of every chunk in one request (or one forward pass) to the embedder. The request holds one
    slot of the node's embeddings-server limit, which bounds requests in flight across all flow runs."""
    settings = get_settings()
    with model_server_slot("embed", settings):
        vectors = embedder(settings).embed_documents([chunk.text for chunk in chunks])
    for chunk, vector in zip(chunks, vectors, strict=True):
        chunk.vector = vector
    return chunks


@dataclass
class EmbeddingBatch:
    parts: list[tuple[Hashable, list[Chunk]]]  # (document key, its passages in this batch)
    alone: bool = False  # one document's part again, after the mixed batch it was in failed


@dataclass
class EmbeddingOutcome:
    embedded: list[Hashable] = field(default_factory=list)  # documents whose every passage now has a vector
    failed: dict[Hashable, str] = field(default_factory=dict)  # document -> reason


class EmbeddingStage:
    """Cross-document batching with at most ``in_flight`` requests at once.

    The flow thread ``add``s documents; each batch that comes back is accounted for and the next one sent from the
    completion callback itself, so the server never waits while the flow thread stores a document. The flow thread
    gets an ``("embedded", EmbeddingOutcome)`` event on ``events`` for every batch that finishes documents.
    """

    def __init__(self, runner: ThreadPoolTaskRunner, events: queue.Queue, batch_size: int, in_flight: int):
        self._runner = runner
        self._events = events
        self._batch_size = batch_size
        self._max_in_flight = in_flight
        self._flow_context = contextvars.copy_context()  # callbacks submit as if from the flow thread
        self._lock = threading.Lock()
        self._waiting: deque[tuple[Hashable, list[Chunk]]] = deque()
        self._alone: deque[EmbeddingBatch] = deque()
        self._remaining: dict[Hashable, int] = {}
        self._failed: set[Hashable] = set()
        self._in_flight = 0
        self._busy_since = 0.0
        self.busy_seconds = 0.0  # wall time with at least one request in flight

    def add(self, document: Hashable, chunks: list[Chunk]) -> None:
        with self._lock:
            self._remaining[document] = len(chunks)
            self._waiting.append((document, list(chunks)))
            self._dispatch()

    def _dispatch(self) -> None:
        while self._in_flight < self._max_in_flight:
            batch = self._alone.popleft() if self._alone else self._next_batch()
            if batch is None:
                return
            if self._in_flight == 0:
                self._busy_since = time.perf_counter()
            self._in_flight += 1
            chunks = [chunk for _, part in batch.parts for chunk in part]
            # quote(): not walked by Prefect in search of futures (CPU the flow needs for other stages)
            future = self._flow_context.copy().run(self._runner.submit, embed_batch, {"chunks": quote(chunks)})
            future.add_done_callback(lambda done, batch=batch: self._finished(batch, done))

    def _next_batch(self) -> EmbeddingBatch | None:
        parts, size = [], 0
        while self._waiting and size < self._batch_size:
            document, chunks = self._waiting.popleft()
            if document in self._failed:
                continue
            taken = chunks[: self._batch_size - size]
            if len(taken) < len(chunks):
                self._waiting.appendleft((document, chunks[len(taken) :]))
            parts.append((document, taken))
            size += len(taken)
        return EmbeddingBatch(parts) if parts else None

    def _finished(self, batch: EmbeddingBatch, future: PrefectFuture) -> None:
        finished_at = time.perf_counter()
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.busy_seconds += finished_at - self._busy_since
            outcome = self._outcome(batch, future)
            self._dispatch()
        if outcome.embedded or outcome.failed:
            self._events.put(("embedded", outcome))

    def _outcome(self, batch: EmbeddingBatch, future: PrefectFuture) -> EmbeddingOutcome:
        """A failed batch of several documents is split and each document's part tried alone, so one document's bad
        passage never fails its neighbours; a server that is down (an error marked retryable, already retried)
        fails them all at once instead of retrying each."""
        outcome = EmbeddingOutcome()
        try:
            future.result()
        except Exception as error:
            documents = {document for document, _ in batch.parts} - self._failed
            if len(documents) > 1 and not batch.alone and not getattr(error, "retryable", False):
                self._alone.extend(EmbeddingBatch([part], alone=True) for part in batch.parts if part[0] in documents)
                return outcome
            for document in documents:
                self._failed.add(document)
                outcome.failed[document] = error_reason(error)
            return outcome
        for document, part in batch.parts:
            if document in self._failed:
                continue
            self._remaining[document] -= len(part)
            if self._remaining[document] == 0:
                outcome.embedded.append(document)
        return outcome
